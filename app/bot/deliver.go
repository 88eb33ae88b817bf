package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/usipipo/usipipo/app/bot/i18n"
	"github.com/usipipo/usipipo/app/pay"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// awaitRec is what to deliver when an invoice the bot opened is paid.
type awaitRec struct {
	Chat    int64         `json:"chat"`
	Type    model.KeyType `json:"type,omitempty"` // a plan's first key
	Created time.Time     `json:"created"`
}

const (
	awaitPrefix   = "p/"       // Conversations telemetry: p/<payment id> → awaitRec
	deliveredMark = "bot/dlv/" // Receipts telemetry: bot/dlv/<payment id>
	awaitTTL      = 26 * time.Hour
	watchEvery    = time.Second
)

// errNotPaid: the payment is not (or no longer) paid; nothing to deliver.
var errNotPaid = errors.New("payment not paid")

func (b *Bot) saveAwait(paymentID string, a awaitRec) error {
	a.Created = b.now()
	raw, err := json.Marshal(a)
	if err != nil {
		return err
	}
	return b.app.Store().PutTelemetry(store.Conversations, map[string][]byte{awaitPrefix + paymentID: raw})
}

func (b *Bot) loadAwait(paymentID string) *awaitRec {
	raw, err := b.app.Store().GetTelemetry(store.Conversations, awaitPrefix+paymentID)
	if err != nil || raw == nil {
		return nil
	}
	var a awaitRec
	if json.Unmarshal(raw, &a) != nil {
		return nil
	}
	return &a
}

// AfterPayments wraps the intake's handler (the payment service) so that a
// Stars successful_payment, once granted, is delivered at once. A delivery
// that fails for a transient reason fails the update, which the intake
// retries; the grant is idempotent and a delivery happens once.
func (b *Bot) AfterPayments(next pay.Handler) pay.Handler {
	return pay.HandlerFunc(func(ctx context.Context, u *pay.Update) error {
		if err := next.HandleUpdate(ctx, u); err != nil {
			return err
		}
		if u.Message == nil || u.Message.SuccessfulPayment == nil {
			return nil
		}
		id, err := b.pay.ParsePayload(pay.Stars, u.Message.SuccessfulPayment.InvoicePayload)
		if err != nil {
			return nil // not ours; the payment service audited it
		}
		err = b.deliver(ctx, id)
		if err == nil || errors.Is(err, errNotPaid) || isDomain(err) {
			if err != nil && !errors.Is(err, errNotPaid) {
				b.log.Warn("bot_delivery_refused", "service", "bot", "details", err.Error())
			}
			return nil
		}
		return err
	})
}

// watch delivers what other paths paid (QvaPay callbacks and sweeps, Stars
// reconciliation) and forgets invoices that will not be paid.
func (b *Bot) watch(ctx context.Context) {
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			b.deliverAwaited(ctx)
		}
	}
}

func (b *Bot) deliverAwaited(ctx context.Context) {
	var ids []string
	b.app.Store().ScanTelemetry(store.Conversations, awaitPrefix, func(k, _ []byte) bool {
		ids = append(ids, strings.TrimPrefix(string(k), awaitPrefix))
		return true
	})
	for _, id := range ids {
		err := b.deliver(ctx, id)
		if !errors.Is(err, errNotPaid) {
			if err != nil {
				b.log.Warn("bot_delivery_failed", "service", "bot", "details", err.Error())
			}
			continue
		}
		p, perr := b.app.Store().Payment(id)
		a := b.loadAwait(id)
		if (perr == nil && p.Status != model.PayPending) || errors.Is(perr, model.ErrNotFound) || (a != nil && b.now().Sub(a.Created) > awaitTTL) {
			b.app.Store().PutTelemetry(store.Conversations, map[string][]byte{awaitPrefix + id: nil})
		}
	}
}

// deliver hands over what payment id bought, once: a plan's first key
// (config and QR), or a confirmation of data, slots or credits.
func (b *Bot) deliver(ctx context.Context, id string) error {
	st := b.app.Store()
	if done, err := st.GetTelemetry(store.Receipts, deliveredMark+id); err != nil || done != nil {
		if done != nil {
			st.PutTelemetry(store.Conversations, map[string][]byte{awaitPrefix + id: nil})
		}
		return err
	}
	p, err := st.Payment(id)
	if err != nil {
		return err
	}
	if p.Status != model.PayPaid {
		return errNotPaid
	}
	u, err := st.User(p.UserID)
	if err != nil {
		return err
	}
	a := b.loadAwait(id)
	if a == nil {
		a = &awaitRec{Chat: u.TelegramID}
	}
	if a.Type == "" {
		a.Type = model.WireGuard
	}
	if err := b.deliverProduct(ctx, u, p, a); err != nil {
		return err
	}
	return st.PutTelemetry(store.Receipts, map[string][]byte{deliveredMark + id: []byte("sent")})
}

func (b *Bot) deliverProduct(ctx context.Context, u *model.User, p *model.Payment, a *awaitRec) error {
	lang := i18n.Lang(u.Language)
	say := func(key string, kv ...any) error {
		_, err := b.tg.send(ctx, a.Chat, b.cat.T(lang, key, kv...), nil)
		return err
	}
	switch p.Product.Kind {
	case pay.KindPlan:
		return b.deliverPlan(ctx, u, a, lang, say)
	case pay.KindData:
		return say("buy.data_added", "size", size(uint64(p.Product.Qty)))
	case pay.KindSlots:
		return say("buy.slots_added", "n", p.Product.Qty)
	case pay.KindCredits:
		bal, err := b.app.Balance(ctx, u.ID)
		if err != nil {
			return err
		}
		return say("buy.credits_added", "n", p.Product.Qty, "balance", bal)
	}
	return fmt.Errorf("product %q: %w", p.Product.Kind, model.ErrInvalid)
}

// deliverPlan confirms the plan and issues its first key of the chosen
// protocol when the user has none yet; keys they already hold took the
// plan's limits in the grant.
func (b *Bot) deliverPlan(ctx context.Context, u *model.User, a *awaitRec, lang string, say func(string, ...any) error) error {
	prof, err := b.app.Profile(ctx, u.ID)
	if err != nil {
		return err
	}
	if prof.Plan == nil {
		return say("buy.plan_inactive")
	}
	if err := say("buy.plan_active", "plan", prof.Plan.Name, "expiry", day(prof.Sub.ExpiresAt)); err != nil {
		return err
	}
	for _, k := range prof.Keys {
		if k.SubID != "" && k.Type == a.Type && k.Status == model.KeyActive {
			return say("buy.keys_extended")
		}
	}
	if a.Type == model.MTProto {
		for _, x := range prof.Proxies {
			if x.Status == model.KeyActive && x.Limits.ExpiresAt.Equal(prof.Sub.ExpiresAt) {
				return say("buy.keys_extended")
			}
		}
	}
	cfg, version, err := b.issue(ctx, u.TelegramID, u.ID, a.Type, false)
	if errors.Is(err, model.ErrQuota) {
		return say("buy.keys_extended")
	}
	if err != nil {
		return err
	}
	return b.sendConfig(ctx, a.Chat, lang, cfg, version)
}
