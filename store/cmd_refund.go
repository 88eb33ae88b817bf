package store

import (
	"bytes"
	"fmt"
	"time"

	"github.com/usipipo/usipipo/store/model"
)

// Reasons a refund gives the credentials it stops.
const (
	ReasonRefunded      = "refunded"       // the plan that covered it was refunded
	ReasonSlotsRefunded = "slots_refunded" // beyond the quota once bought slots were refunded
)

// ProductData is a data package: Product.RefID names the key (or MTProto
// secret) whose current data cap grows by Product.Qty bytes.
const ProductData = "data"

// SettleDataPayment is SettlePayment for data packages: it marks a pending
// payment paid by a provider charge and grows the data cap of the key the
// product names, in the same transaction. A key its cap had suspended is
// restored when the new cap covers its use. The same charge is never
// recorded twice (ErrExists), and the user's first payment vests their
// referrer's credits, exactly as SettlePayment.
type SettleDataPayment struct {
	PaymentID string `json:"payment_id"`
	ChargeID  string `json:"charge_id"`
	Amount    int64  `json:"amount"`
	Currency  string `json:"currency"`
	VestID    string `json:"vest_id,omitempty"`
}

// Kind implements Command.
func (SettleDataPayment) Kind() string { return "payment.settle_data/1" }

func (c SettleDataPayment) plan(v *view, m Meta) (mutation, error) {
	p, err := settleChecks(v, c.PaymentID, c.ChargeID, c.Amount, c.Currency)
	if err != nil {
		return nil, err
	}
	if p.Product.Kind != ProductData || p.Product.Qty <= 0 {
		return nil, fmt.Errorf("payment %s is not a data package: %w", p.ID, model.ErrInvalid)
	}
	grow, err := dataChange(v, m, p.UserID, p.Product.RefID, p.Product.Qty)
	if err != nil {
		return nil, err
	}
	return settled(v, m, p, c.ChargeID, c.VestID, grow)
}

// dataChange grows (delta > 0) or shrinks the data cap of a user's key or
// MTProto secret for its current period. A credential whose use reaches the
// new cap is suspended (ReasonDataCap); one the cap had suspended is
// restored when the new cap covers its use.
func dataChange(v *view, m Meta, userID, credID string, delta int64) (mutation, error) {
	apply := func(st *model.KeyStatus, reason *string, l *model.Limits, used uint64) {
		if delta >= 0 {
			l.DataCap += uint64(delta)
		} else {
			l.DataCap = sat(l.DataCap, uint64(-delta))
		}
		over := l.ThrottleBps == 0 && used >= l.DataCap
		switch {
		case *st == model.KeyActive && over:
			*st, *reason = model.KeySuspended, ReasonDataCap
		case *st == model.KeySuspended && *reason == ReasonDataCap && !over:
			*st, *reason = model.KeyActive, ""
		}
	}
	if k, err := getByID(v, keys, credID); err == nil {
		if k.UserID != userID || k.Status == model.KeyRevoked || k.Limits.DataCap == 0 {
			return nil, fmt.Errorf("key %s takes no data package: %w", credID, model.ErrState)
		}
		return func(w *writer) error {
			apply(&k.Status, &k.Reason, &k.Limits, k.PeriodUsage())
			k.Updated = m.At
			return put(w, keys, k)
		}, nil
	}
	p, err := getByID(v, proxies, credID)
	if err != nil {
		return nil, fmt.Errorf("credential %s: %w", credID, err)
	}
	if p.UserID != userID || p.Status == model.KeyRevoked || p.Limits.DataCap == 0 {
		return nil, fmt.Errorf("secret %s takes no data package: %w", credID, model.ErrState)
	}
	return func(w *writer) error {
		apply(&p.Status, &p.Reason, &p.Limits, p.PeriodUsage())
		p.Updated = m.At
		return put(w, proxies, p)
	}, nil
}

func sat(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
}

// RefundPayment reverses exactly what settling a payment granted and marks
// it refunded:
//
//   - a plan: the subscription the payment created is cancelled, and later
//     renewals of the same plan that were stacked on it are shortened by the
//     days it added. The user's plan keys move to what is current without it
//     (with its limits; suspended when their use already exceeds its cap) or,
//     with no plan left, are suspended (ReasonRefunded);
//   - credits: a negative ledger entry of the same amount, which may take the
//     balance below zero;
//   - slots: the extra slots are removed, and the newest plan keys beyond the
//     quota are suspended (ReasonSlotsRefunded);
//   - a data package: the cap shrinks back, and a credential that already
//     used the paid data is suspended;
//   - a referral the payment vested: the referrer's credits are taken back
//     (the referral stays vested, so it never vests twice).
//
// It is idempotent by RefundID: the same refund of a refunded payment is a
// no-op success; another refund of it is refused (ErrState).
type RefundPayment struct {
	PaymentID   string `json:"payment_id"`
	RefundID    string `json:"refund_id"`               // the provider's refund (for Stars, the charge id)
	EntryID     string `json:"entry_id,omitempty"`      // ledger entry taking back bought credits
	VestEntryID string `json:"vest_entry_id,omitempty"` // ledger entry taking back the referrer's credits
	Reason      string `json:"reason,omitempty"`        // "user", "admin", "chargeback"
}

// Kind implements Command.
func (RefundPayment) Kind() string { return "payment.refund/1" }

var keyRefundMark = []byte("refund/")

func refundMark(provider, refundID string) []byte {
	return append(append(append([]byte(nil), keyRefundMark...), compose(str(provider), nil)...), refundID...)
}

func (c RefundPayment) plan(v *view, m Meta) (mutation, error) {
	p, err := getByID(v, payments, c.PaymentID)
	if err != nil {
		return nil, fmt.Errorf("payment %s: %w", c.PaymentID, err)
	}
	if c.RefundID == "" {
		return nil, fmt.Errorf("refund id is required: %w", model.ErrInvalid)
	}
	mark := refundMark(p.Provider, c.RefundID)
	if p.Status == model.PayRefunded {
		if bytes.Equal(v.bucket(bMeta).Get(mark), str(p.ID)) {
			return func(*writer) error { return nil }, nil
		}
		return nil, fmt.Errorf("payment %s is already refunded: %w", p.ID, model.ErrState)
	}
	if p.Status != model.PayPaid {
		return nil, fmt.Errorf("payment %s is %s: %w", p.ID, p.Status, model.ErrState)
	}
	if v.bucket(bMeta).Get(mark) != nil {
		return nil, fmt.Errorf("refund %s already recorded: %w", c.RefundID, model.ErrExists)
	}
	reverse, err := productReversal(v, m, p, c)
	if err != nil {
		return nil, err
	}
	claw, err := vestReversal(v, m, p, c.VestEntryID)
	if err != nil {
		return nil, err
	}
	return func(w *writer) error {
		p.Status, p.RefundedAt = model.PayRefunded, m.At
		if err := put(w, payments, p); err != nil {
			return err
		}
		if err := w.tx.Bucket(bMeta).Put(mark, str(p.ID)); err != nil {
			return fmt.Errorf("writing refund mark: %w", err)
		}
		if err := reverse(w); err != nil {
			return err
		}
		return claw(w)
	}, nil
}

func productReversal(v *view, m Meta, p *model.Payment, c RefundPayment) (mutation, error) {
	u, err := liveUser(v, p.UserID)
	if err != nil {
		return nil, err
	}
	switch p.Product.Kind {
	case "plan":
		return planReversal(v, m, p)
	case "credits":
		return creditGrant(v, m, model.CreditEntry{ID: c.EntryID, UserID: p.UserID, Amount: -p.Product.Qty,
			Reason: "refund", IdempotencyKey: "refund:" + p.ID, RefID: p.ID}, true)
	case "slots":
		return slotsReversal(v, m, u, int(p.Product.Qty))
	case ProductData:
		return dataChange(v, m, p.UserID, p.Product.RefID, -p.Product.Qty)
	}
	return nil, fmt.Errorf("product %q: %w", p.Product.Kind, model.ErrInvalid)
}

// userSubs loads a user's subscriptions in index (expiry) order.
func userSubs(v *view, userID string) ([]*model.Subscription, error) {
	var out []*model.Subscription
	for _, id := range v.lastParts(iSubsUser, userPrefix(userID)) {
		s, err := getByID(v, subs, id)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func planReversal(v *view, m Meta, p *model.Payment) (mutation, error) {
	all, err := userSubs(v, p.UserID)
	if err != nil {
		return nil, err
	}
	var bought *model.Subscription
	for _, s := range all {
		if s.Source == p.ID {
			bought = s
		}
	}
	if bought == nil {
		return nil, fmt.Errorf("subscription of payment %s: %w", p.ID, model.ErrNotFound)
	}
	plan, err := getByID(v, plans, bought.PlanID)
	if err != nil {
		return nil, fmt.Errorf("plan %s: %w", bought.PlanID, err)
	}
	span := time.Duration(max(p.Product.Months, 1)*plan.DurationDays) * 24 * time.Hour
	changed := map[string]bool{bought.ID: true}
	var writes []*model.Subscription
	if bought.Status == model.SubActive {
		bought.Status = model.SubCancelled
		writes = append(writes, bought)
	}
	for _, s := range all {
		if s.ID == bought.ID || s.PlanID != bought.PlanID || s.Status != model.SubActive ||
			s.Created.Before(bought.Created) || !s.ExpiresAt.After(bought.ExpiresAt) {
			continue
		}
		// A renewal stacked on the refunded one: it started at its expiry.
		s.ExpiresAt = s.ExpiresAt.Add(-span)
		if !s.ExpiresAt.After(s.Start) {
			s.Status = model.SubCancelled
		}
		changed[s.ID] = true
		writes = append(writes, s)
	}
	// What is current once the refund is applied.
	moved, err := rehomeKeys(v, p.UserID, latestCurrent(all, "", m.At),
		func(k *model.Key) bool { return changed[k.SubID] }, ReasonRefunded, m.At)
	if err != nil {
		return nil, err
	}
	return func(w *writer) error {
		for _, s := range writes {
			if err := put(w, subs, s); err != nil {
				return err
			}
		}
		for _, k := range moved {
			if err := put(w, keys, k); err != nil {
				return err
			}
		}
		return nil
	}, nil
}

func slotsReversal(v *view, m Meta, u *model.User, n int) (mutation, error) {
	if n <= 0 {
		return nil, fmt.Errorf("slots %d: %w", n, model.ErrInvalid)
	}
	u.ExtraSlots = max(u.ExtraSlots-n, 0)
	u.Updated = m.At
	quota := u.ExtraSlots
	if _, plan, err := currentPlan(v, u.ID, m); err == nil {
		quota += plan.MaxKeys
	}
	var inUse []*model.Key
	for _, id := range v.lastParts(iKeysUserStatus, compose(str(u.ID), str(string(model.KeyActive)), nil)) {
		k, err := getByID(v, keys, id)
		if err != nil {
			return nil, err
		}
		if k.SubID != "" && !k.Trial {
			inUse = append(inUse, k)
		}
	}
	// Ids sort by creation: the newest keys beyond the quota stop.
	var stop []*model.Key
	for i := len(inUse) - 1; i >= 0 && len(inUse)-len(stop) > quota; i-- {
		k := inUse[i]
		k.Status, k.Reason, k.Updated = model.KeySuspended, ReasonSlotsRefunded, m.At
		stop = append(stop, k)
	}
	return func(w *writer) error {
		if err := put(w, users, u); err != nil {
			return err
		}
		for _, k := range stop {
			if err := put(w, keys, k); err != nil {
				return err
			}
		}
		return nil
	}, nil
}

// vestReversal takes back the referral credits a payment vested.
func vestReversal(v *view, m Meta, p *model.Payment, entryID string) (mutation, error) {
	noop := func(*writer) error { return nil }
	r, err := getByID(v, referrals, p.UserID)
	if err != nil || !r.Vested || r.VestedBy != p.ID || r.Credits == 0 {
		return noop, nil
	}
	if v.bucket(iCreditsIdem).Get(str("referral:"+r.ReferredID)) == nil {
		return noop, nil // vested without credits
	}
	if entryID == "" {
		return nil, fmt.Errorf("a ledger entry id is needed to take back referral credits: %w", model.ErrInvalid)
	}
	return creditGrant(v, m, model.CreditEntry{ID: entryID, UserID: r.ReferrerID, Amount: -r.Credits,
		Reason: "referral_refund", IdempotencyKey: "refund-referral:" + p.ID, RefID: p.ID}, true)
}

// ExpirePayment marks a pending payment expired: its invoice may no longer
// be paid through the normal path. A late charge can still settle it.
type ExpirePayment struct {
	PaymentID string `json:"payment_id"`
}

// Kind implements Command.
func (ExpirePayment) Kind() string { return "payment.expire/1" }

func (c ExpirePayment) plan(v *view, m Meta) (mutation, error) {
	p, err := getByID(v, payments, c.PaymentID)
	if err != nil {
		return nil, fmt.Errorf("payment %s: %w", c.PaymentID, err)
	}
	if p.Status != model.PayPending {
		return nil, fmt.Errorf("payment %s is %s: %w", p.ID, p.Status, model.ErrState)
	}
	return func(w *writer) error {
		p.Status = model.PayExpired
		return put(w, payments, p)
	}, nil
}

// RejectPayment records a payment event that was refused before reaching the
// state — a forged payload, a callback for a transaction we never issued, an
// under-payment, an anti-fraud decision — so every such decision is in the
// audit trail. It changes nothing else.
type RejectPayment struct {
	Provider  string `json:"provider"`
	Event     string `json:"event"`                // "pre_checkout", "successful_payment", "callback", "fraud", …
	UserID    string `json:"user_id,omitempty"`    // when known
	PaymentID string `json:"payment_id,omitempty"` // as claimed, when it parses
	Ref       string `json:"ref,omitempty"`        // provider reference (charge id, transaction uuid)
	Why       string `json:"why"`
}

// Kind implements Command.
func (RejectPayment) Kind() string        { return "payment.reject/1" }
func (c RejectPayment) auditUser() string { return c.UserID }

func (c RejectPayment) plan(v *view, m Meta) (mutation, error) {
	if c.Provider == "" || c.Why == "" {
		return nil, fmt.Errorf("a rejection needs a provider and a reason: %w", model.ErrInvalid)
	}
	return func(*writer) error { return nil }, nil
}

// latestCurrent is the subscription among all (but skip) current at at that
// runs longest: the one a user's paid keys belong to.
func latestCurrent(all []*model.Subscription, skip string, at time.Time) *model.Subscription {
	var cur *model.Subscription
	for _, s := range all {
		if s.ID != skip && s.CurrentAt(at) && (cur == nil || !s.ExpiresAt.Before(cur.ExpiresAt)) {
			cur = s
		}
	}
	return cur
}

// rehomeKeys moves a user's paid keys whose subscription went away (lost)
// onto cur, with its plan's limits (suspended if already over its cap), or,
// when no subscription is current, suspends them for reason.
func rehomeKeys(v *view, userID string, cur *model.Subscription, lost func(*model.Key) bool, reason string, at time.Time) ([]*model.Key, error) {
	var curPlan *model.Plan
	if cur != nil {
		var err error
		if curPlan, err = getByID(v, plans, cur.PlanID); err != nil {
			return nil, fmt.Errorf("plan %s: %w", cur.PlanID, err)
		}
	}
	var moved []*model.Key
	for _, id := range v.lastParts(iKeysUserStatus, userPrefix(userID)) {
		k, err := getByID(v, keys, id)
		if err != nil {
			return nil, err
		}
		if k.Trial || !lost(k) || (k.Status != model.KeyActive && k.Status != model.KeySuspended) {
			continue
		}
		if cur == nil {
			if k.Status == model.KeyActive {
				k.Status, k.Reason = model.KeySuspended, reason
			}
		} else {
			k.SubID, k.Limits = cur.ID, planLimits(curPlan, cur)
			over := k.Limits.DataCap > 0 && k.Limits.ThrottleBps == 0 && k.PeriodUsage() >= k.Limits.DataCap
			if k.Status == model.KeyActive && over {
				k.Status, k.Reason = model.KeySuspended, ReasonDataCap
			}
		}
		k.Updated = at
		moved = append(moved, k)
	}
	return moved, nil
}
