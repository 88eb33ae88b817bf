package bot

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	tele "gopkg.in/telebot.v3"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/app/bot/i18n"
	"github.com/usipipo/usipipo/app/pay"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// handler handles one command, callback or flow step. A returned error is
// rendered by fail.
type handler func(r *req) error

// req is one update being handled.
type req struct {
	ctx   context.Context
	b     *Bot
	tgID  int64
	chat  int64
	from  *tele.User
	lang  string
	user  *model.User // nil until registered
	text  string
	cmd   string // "/start", lower case, without @bot
	arg   string // the rest of a command's text
	cb    *tele.Callback
	msgID int64      // the message a callback's button is on
	args  []string   // a callback's checked arguments
	state *convState // the flow a plain text message continues
}

// requestFrom reads what the bot needs from an update; nil for updates it
// does not answer (channel posts, edits, groups, other bots).
func (b *Bot) requestFrom(ctx context.Context, up *tele.Update) *req {
	r := &req{ctx: ctx, b: b}
	switch {
	case up.Message != nil:
		m := up.Message
		if m.Sender == nil || m.Sender.IsBot || m.Chat == nil || m.Chat.Type != tele.ChatPrivate {
			return nil
		}
		r.from, r.chat, r.text = m.Sender, m.Chat.ID, strings.TrimSpace(m.Text)
		if strings.HasPrefix(r.text, "/") {
			cmd, arg, _ := strings.Cut(r.text, " ")
			cmd, _, _ = strings.Cut(cmd, "@")
			r.cmd, r.arg = strings.ToLower(cmd), strings.TrimSpace(arg)
		}
	case up.Callback != nil:
		c := up.Callback
		if c.Sender == nil || c.Message == nil || c.Message.Chat == nil {
			return nil
		}
		r.from, r.chat, r.cb, r.msgID = c.Sender, c.Message.Chat.ID, c, int64(c.Message.ID)
	default:
		return nil
	}
	if r.from.ID <= 0 || r.chat == 0 {
		return nil // not a user Telegram would send
	}
	r.tgID = r.from.ID
	r.lang = i18n.Lang(r.from.LanguageCode)
	return r
}

// request is requestFrom with the user's record and language, when
// registered.
func (b *Bot) request(ctx context.Context, up *tele.Update) *req {
	r := b.requestFrom(ctx, up)
	if r == nil {
		return nil
	}
	if u, err := b.app.Store().UserByTelegram(r.tgID); err == nil {
		r.user = u
		r.lang = i18n.Lang(u.Language)
	}
	return r
}

// t renders a catalogue message in the user's language.
func (r *req) t(key string, kv ...any) string { return r.b.cat.T(r.lang, key, kv...) }

// say sends a new message.
func (r *req) say(text string, k *tele.ReplyMarkup) error {
	_, err := r.b.tg.send(r.ctx, r.chat, text, k)
	return err
}

// show replaces the message a button was pressed on, or sends a new one.
func (r *req) show(text string, k *tele.ReplyMarkup) error {
	if r.cb != nil && r.msgID != 0 {
		err := r.b.tg.edit(r.ctx, r.chat, r.msgID, text, k)
		var ae *pay.APIError
		if !errors.As(err, &ae) || ae.Status != 400 {
			return err
		}
		// Too old to edit, or not a text message: send it anew.
	}
	return r.say(text, k)
}

func (r *req) isAdmin() bool {
	if slices.Contains(r.b.admins, r.tgID) {
		return true
	}
	if r.user == nil {
		return false
	}
	role := r.user.RoleAt(r.b.now())
	return role == model.RoleAdmin || role == model.RoleSuperadmin
}

// open is commands that work before, or without, registration.
var open = map[string]bool{"/start": true, "/help": true, "/cancel": true, "/lang": true, "/privacy": true}

// openCallbacks are the buttons of the open commands: a banned user can
// still read the help, change language, and export or delete their data.
var openCallbacks = map[string]bool{"help": true, "lang": true, "lang.set": true, "priv": true, "priv.exp": true,
	"priv.del": true, "priv.delok": true}

// dispatch runs the handler an update asks for and renders its error.
func (b *Bot) dispatch(r *req) {
	defer func() {
		if p := recover(); p != nil {
			r.fail(fmt.Errorf("handler panic: %v", p))
		}
	}()
	if err := b.route(r); err != nil {
		r.fail(err)
	}
}

func (b *Bot) route(r *req) error {
	if r.cb != nil {
		action, args, ok := b.parseCB(r.tgID, r.cb.Data)
		if !ok {
			return b.tg.answer(r.ctx, r.cb.ID, r.t("error.stale_button"))
		}
		// Stop the client's spinner alongside the handler rather than
		// before it (one round trip less); a failure only costs the spinner.
		answered := make(chan struct{})
		go func() {
			defer close(answered)
			b.tg.answer(r.ctx, r.cb.ID, "")
		}()
		defer func() { <-answered }()
		h := b.callbacks[action]
		if h == nil {
			return nil
		}
		r.args = args
		return b.gate(r, h, action == "adm" || strings.HasPrefix(action, "adm."), openCallbacks[action])
	}
	if r.cmd != "" {
		h := b.commands[r.cmd]
		if h == nil {
			return r.say(r.t("error.unknown_command"), nil)
		}
		return b.gate(r, h, adminCommands[r.cmd], open[r.cmd])
	}
	st, err := b.loadState(r.tgID)
	if err != nil {
		return err
	}
	if st == nil || b.flows[st.Flow] == nil {
		return r.say(r.t("help.unknown_text"), r.menu())
	}
	return b.gate(r, func(r *req) error { return b.flows[st.Flow](r.withState(st)) }, strings.HasPrefix(st.Flow, "adm."), false)
}

// gate registers a new user, keeps banned users out, and admin handlers
// for admins.
func (b *Bot) gate(r *req, h handler, admin, isOpen bool) error {
	if r.user == nil && !isOpen {
		if err := r.register(""); err != nil {
			return err
		}
	}
	if r.user != nil && r.user.Erased && !isOpen {
		return r.say(r.t("error.erased"), nil)
	}
	if r.user != nil && r.user.Banned && !isOpen {
		return r.say(r.t("error.banned"), nil)
	}
	if admin && !r.isAdmin() {
		return r.say(r.t("error.unknown_command"), nil)
	}
	return h(r)
}

// register creates the user (with the inviter's referral code, if any).
func (r *req) register(code string) error {
	v, err := r.b.app.RegisterUser(r.ctx, app.BotActor(r.tgID), app.NewUser{TelegramID: r.tgID, Username: r.from.Username,
		FirstName: r.from.FirstName, LastName: r.from.LastName, Language: r.from.LanguageCode, ReferralCode: code})
	if err != nil && !errors.Is(err, model.ErrExists) {
		return err
	}
	u := v.User
	r.user = &u
	r.lang = i18n.Lang(u.Language)
	return nil
}

// userErrors are domain refusals shown as they are, by catalogue key.
var userErrors = []struct {
	err error
	key string
}{
	{model.ErrQuota, "error.quota"}, {model.ErrTrialUsed, "error.trial_used"}, {store.ErrTrialBudget, "error.trial_budget"},
	{model.ErrTrialDisabled, "error.trial_disabled"},
	{model.ErrBanned, "error.banned"}, {model.ErrErased, "error.erased"}, {model.ErrProtocol, "error.protocol"},
	{model.ErrBalance, "error.balance"}, {model.ErrNotFound, "error.not_found"}, {model.ErrInvalid, "error.invalid"},
	{model.ErrState, "error.state"}, {model.ErrForbidden, "error.forbidden"}, {model.ErrConflict, "error.conflict"},
	{model.ErrExists, "error.exists"},
}

// fail tells the user what went wrong. A domain refusal is explained; any
// other error gets an apology with a reference id, and the admins get the
// detail under the same id.
func (r *req) fail(err error) {
	if k := payErrorKey(err); k != "" {
		r.say(r.t(k), nil)
		return
	}
	for _, ue := range userErrors {
		if errors.Is(err, ue.err) {
			r.say(r.t(ue.key), nil)
			return
		}
	}
	ref := r.b.ref()
	r.b.log.Error("bot_handler_failed", "service", "bot", "ref", ref, "details", err.Error())
	r.say(r.t("error.internal", "ref", ref), nil)
	r.b.notifyAdmins(r.ctx, "admin.error", "ref", ref, "tg", r.tgID, "err", err.Error())
}

// ref is a short random reference id for an error report.
func (b *Bot) ref() string {
	var x [4]byte
	io.ReadFull(b.rand, x[:])
	return hex.EncodeToString(x[:])
}

// notifyAdmins sends message key to the configured admins, each in their
// language; failures are logged.
func (b *Bot) notifyAdmins(ctx context.Context, key string, kv ...any) {
	for _, id := range b.admins {
		lang := i18n.Default
		if u, err := b.app.Store().UserByTelegram(id); err == nil {
			lang = i18n.Lang(u.Language)
		}
		if _, err := b.tg.send(ctx, id, b.cat.T(lang, key, kv...), nil); err != nil {
			b.log.Warn("bot_admin_notify_failed", "service", "bot", "details", err.Error())
		}
	}
}

func (r *req) withState(st *convState) *req {
	r.state = st
	return r
}
