package notify

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/usipipo/usipipo/store/model"
)

// note is one notification to a user: kind names its text, subject what it
// is about (a key id) and threshold which occurrence (an expiry time, a
// cap period, a record version), so the receipt key
// n/<user>/<kind>/<subject>/<threshold>/<channel> is sent once.
type note struct {
	userID, kind, subject, threshold string
	args                             []string
}

func (nt note) key(channel string) string {
	return strings.Join([]string{"n", nt.userID, nt.kind, nt.subject, nt.threshold, channel}, "/")
}

// notifyUser delivers nt by Telegram and, for a user with an e-mail on
// file, by e-mail, each once. Banned and erased users get nothing. It
// returns errNotSent (wrapped) when a channel is left for the next scan.
func (n *Notifier) notifyUser(ctx context.Context, nt note) error {
	u, err := n.st.User(nt.userID)
	if err != nil {
		return fmt.Errorf("notification %s: %w", nt.kind, err)
	}
	if u.Banned || u.Erased {
		return nil
	}
	text := n.cat.text(u.Language, nt.kind, nt.args...)
	var errs []error
	if n.tg != nil && u.TelegramID != 0 {
		blocked, err := n.rc.blocked(u.ID)
		if err != nil {
			return err
		}
		if !blocked {
			out, err := n.rc.once(nt.key("tg"), n.now, func(claim func() error) outcome {
				return n.sendTelegram(ctx, u.TelegramID, claim, func(rctx context.Context) error {
					return n.tg.sendMessage(rctx, u.TelegramID, text)
				})
			})
			errs = append(errs, err, n.settle(out, u.ID, "telegram"))
		}
	}
	if n.mail != nil {
		if addr := n.email(ctx, u); addr != "" {
			out, err := n.rc.once(nt.key("mail"), n.now, func(claim func() error) outcome {
				return n.sendMail(ctx, claim, addr, n.cat.text(u.Language, "mail_subject"), text)
			})
			errs = append(errs, err, n.settle(out, u.ID, "e-mail"))
		}
	}
	return errors.Join(errs...)
}

// settle counts an outcome, marks a user who blocked the bot, and turns a
// send left for later into errNotSent.
func (n *Notifier) settle(out outcome, userID, channel string) error {
	n.count(out)
	switch out {
	case outBlocked:
		if userID != "" {
			return n.rc.setBlocked(userID, n.now(), true)
		}
	case outRetry:
		return notSent(channel)
	}
	return nil
}

// email opens a user's address from their sealed personal data; "" when
// there is none or it cannot be opened (erased users have no key).
func (n *Notifier) email(ctx context.Context, u *model.User) string {
	if len(u.Personal) == 0 {
		return ""
	}
	v, err := n.svc.CachedUser(ctx, u.ID)
	if err != nil {
		return ""
	}
	return v.Personal.Email
}
