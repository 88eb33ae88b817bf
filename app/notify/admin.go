package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// Admin notifications go to every admin chat (--admin-id) and admin e-mail
// (--admin-email), each with its own receipt
// a/<kind>/<subject>/<tg:chat|mail:address>.
type adminNote struct {
	kind, subject string
	telegram      bool // false: e-mail only
	textID        string
	args          []string
}

// notifyAdmins delivers an admin notification through every channel.
// Admins read the texts in their own language when their chat is a known
// user, otherwise in the default one.
func (n *Notifier) notifyAdmins(ctx context.Context, a adminNote, document func(ctx context.Context, chat int64, caption string) error) error {
	var errs []error
	base := "a/" + a.kind + "/" + a.subject + "/"
	if n.tg != nil && a.telegram {
		for _, chat := range n.o.AdminChats {
			text := n.cat.text(n.adminLang(chat), a.textID, a.args...)
			out, err := n.rc.once(base+"tg:"+strconv.FormatInt(chat, 10), n.now, func(claim func() error) outcome {
				return n.sendTelegram(ctx, chat, claim, func(rctx context.Context) error {
					if document != nil {
						return document(rctx, chat, text)
					}
					return n.tg.sendMessage(rctx, chat, text)
				})
			})
			errs = append(errs, err, n.settle(out, "", "telegram"))
		}
	}
	if n.mail != nil && document == nil {
		text := n.cat.text("", a.textID, a.args...)
		for _, addr := range n.o.AdminEmails {
			out, err := n.rc.once(base+"mail:"+addr, n.now, func(claim func() error) outcome {
				return n.sendMail(ctx, claim, addr, n.cat.text("", "mail_subject"), text)
			})
			errs = append(errs, err, n.settle(out, "", "e-mail"))
		}
	}
	return errors.Join(errs...)
}

func (n *Notifier) adminLang(chat int64) string {
	if u, err := n.st.UserByTelegram(chat); err == nil {
		return u.Language
	}
	return ""
}

// alert is an error reported through Alert.
type alert struct{ source, detail string }

// Alert reports an error to the admins: the hook a logger or the node calls.
// It never blocks (when too many are waiting, the newest is dropped and
// logged), and the same source and detail go out at most once an hour.
// Details must not hold secrets: they are sent as given.
func (n *Notifier) Alert(source, detail string) {
	select {
	case n.alerts <- alert{source, detail}:
	default:
		n.log.Warn("alert_dropped", "details", source)
	}
}

func (n *Notifier) sendAlert(ctx context.Context, a alert) {
	if len(a.detail) > 1000 {
		a.detail = a.detail[:1000] + "…"
	}
	h := sha256.Sum256([]byte(a.source + "\x00" + a.detail))
	hour := n.now().UTC().Format("2006010215")
	err := n.notifyAdmins(ctx, adminNote{kind: "error", subject: hex.EncodeToString(h[:8]) + "@" + hour, telegram: true,
		textID: "admin_error", args: []string{"source", a.source, "detail", a.detail}}, nil)
	if err != nil && ctx.Err() == nil {
		n.log.Warn("alert_not_sent", "details", err.Error())
	}
}

// Payment alerts come from the audit trail: a watermark (the last audit
// sequence looked at) in Checkpoints telemetry, so each settled or refunded
// payment is seen once, and after a restart the scan resumes where it was.
const ckAuditSeq = "notify/audit_seq"

// auditPage bounds the audit entries one scan reads.
const auditPage = 500

func (n *Notifier) scanAudit(ctx context.Context) error {
	if n.mail == nil && !(n.tg != nil && n.o.PaymentAlertsTelegram) {
		return nil
	}
	raw, err := n.st.GetTelemetry(store.Checkpoints, ckAuditSeq)
	if err != nil {
		return err
	}
	// Newest first, down to the watermark: entries after it are usually few.
	var fresh []auditRef
	var newest uint64
	page := store.Page{Limit: auditPage}
	mark, _ := strconv.ParseUint(string(raw), 10, 64)
	for range 20 {
		es, next, err := n.st.Audit(store.AuditFilter{}, page)
		if err != nil {
			return fmt.Errorf("audit trail: %w", err)
		}
		done := false
		for _, e := range es {
			newest = max(newest, e.Seq)
			if e.Seq <= mark {
				done = true
				break
			}
			if raw != nil && e.Error == "" {
				if r, ok := paymentRef(e.Action, e.Command); ok {
					fresh = append(fresh, r)
				}
			}
		}
		if done || next == "" || raw == nil {
			break
		}
		page.After = next
	}
	for i := len(fresh) - 1; i >= 0; i-- { // oldest first
		err := n.paymentAlert(ctx, fresh[i])
		if err != nil && !errors.Is(err, model.ErrNotFound) {
			return ignoreNotSent(err) // the watermark stays: retried next scan
		}
	}
	if newest > mark || raw == nil {
		return n.st.PutTelemetry(store.Checkpoints, map[string][]byte{ckAuditSeq: []byte(strconv.FormatUint(max(newest, mark), 10))})
	}
	return nil
}

type auditRef struct {
	paymentID string
	refund    bool
}

func paymentRef(action string, cmd []byte) (auditRef, bool) {
	refund := action == "payment.refund/1"
	if !refund && action != "payment.settle/1" && action != "payment.settle_data/1" {
		return auditRef{}, false
	}
	var body struct {
		PaymentID string `json:"payment_id"`
	}
	if err := json.Unmarshal(cmd, &body); err != nil || body.PaymentID == "" {
		return auditRef{}, false
	}
	return auditRef{body.PaymentID, refund}, true
}

func (n *Notifier) paymentAlert(ctx context.Context, r auditRef) error {
	p, err := n.st.Payment(r.paymentID)
	if err != nil {
		return err
	}
	kind, textID := "paid", "admin_paid"
	if r.refund {
		kind, textID = "refunded", "admin_refunded"
	}
	return n.notifyAdmins(ctx, adminNote{kind: kind, subject: p.ID, telegram: n.o.PaymentAlertsTelegram, textID: textID,
		args: []string{"amount", formatAmount(p.Amount, p.Currency), "user", p.UserID, "provider", p.Provider, "payment", p.ID}}, nil)
}

func formatAmount(amount int64, currency string) string {
	if strings.EqualFold(currency, "USD") {
		return fmt.Sprintf("%d.%02d USD", amount/100, amount%100)
	}
	return fmt.Sprintf("%d ⭐", amount)
}
