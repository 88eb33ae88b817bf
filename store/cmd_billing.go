package store

import (
	"fmt"
	"time"

	"github.com/usipipo/usipipo/store/model"
)

// PutPlan creates or replaces a plan. Existing subscriptions keep their
// terms until renewed.
type PutPlan struct {
	Plan model.Plan `json:"plan"`
}

// Kind implements Command.
func (PutPlan) Kind() string { return "plan.put/1" }

func (c PutPlan) plan(v *view, m Meta) (mutation, error) {
	p := c.Plan
	if !model.ValidID(p.ID) || p.Name == "" || p.DurationDays <= 0 || p.MaxKeys < 0 || len(p.Protocols) == 0 ||
		p.PriceStars < 0 || p.PriceUSDCents < 0 {
		return nil, fmt.Errorf("plan needs an id, a name, a duration, protocols and prices >= 0: %w", model.ErrInvalid)
	}
	for _, t := range p.Protocols {
		if !t.Valid() {
			return nil, fmt.Errorf("protocol %q: %w", t, model.ErrInvalid)
		}
	}
	old, err := getByID(v, plans, p.ID)
	if err == nil {
		p.Created = old.Created
	} else {
		p.Created = m.At
	}
	return func(w *writer) error { return put(w, plans, &p) }, nil
}

// GrantPlan gives a user a plan for Months (Days for trials or gifts). A
// renewal of the plan the user holds extends it from its current expiry and
// starts a new data period; the user's plan keys take the new limits and are
// restored if the cap had suspended them.
type GrantPlan struct {
	SubID  string `json:"sub_id"`
	UserID string `json:"user_id"`
	PlanID string `json:"plan_id"`
	Months int    `json:"months,omitempty"`
	Days   int    `json:"days,omitempty"`
	Source string `json:"source"`
	// Once, when set, applies the command at most once per key (see bOnce).
	Once string `json:"once,omitempty"`
}

// Kind implements Command.
func (GrantPlan) Kind() string        { return "plan.grant/1" }
func (c GrantPlan) auditUser() string { return c.UserID }

func (c GrantPlan) plan(v *view, m Meta) (mutation, error) {
	return once(v, m, c.Once, c.SubID, func() (mutation, error) { return c.planOnce(v, m) })
}

func (c GrantPlan) planOnce(v *view, m Meta) (mutation, error) {
	mut, err := planGrant(v, m, c)
	if err != nil {
		return nil, err
	}
	return mut, nil
}

func planGrant(v *view, m Meta, c GrantPlan) (mutation, error) {
	if !model.ValidID(c.SubID) || c.Months < 0 || c.Days < 0 || c.Months+c.Days == 0 {
		return nil, fmt.Errorf("subscription id and a positive length are required: %w", model.ErrInvalid)
	}
	if v.bucket(bSubs).Get(str(c.SubID)) != nil {
		return nil, fmt.Errorf("subscription %s: %w", c.SubID, model.ErrExists)
	}
	u, err := customer(v, c.UserID)
	if err != nil {
		return nil, err
	}
	p, err := getByID(v, plans, c.PlanID)
	if err != nil {
		return nil, fmt.Errorf("plan %s: %w", c.PlanID, err)
	}
	start := m.At
	if cur, curPlan, err := currentPlan(v, u.ID, m); err == nil && curPlan.ID == p.ID {
		start = cur.ExpiresAt
	}
	days := c.Days
	if c.Months > 0 {
		days += c.Months * p.DurationDays
	}
	s := &model.Subscription{ID: c.SubID, UserID: u.ID, PlanID: p.ID, Status: model.SubActive, Start: m.At,
		ExpiresAt: start.Add(time.Duration(days) * 24 * time.Hour), Source: c.Source, Created: m.At}
	userKeys := v.lastParts(iKeysUserStatus, userPrefix(u.ID))
	return func(w *writer) error {
		if err := put(w, subs, s); err != nil {
			return err
		}
		limits := planLimits(p, s)
		for _, id := range userKeys {
			k, err := getByID(&w.view, keys, id)
			if err != nil {
				return err
			}
			if k.Trial || k.SubID == "" || (k.Status != model.KeyActive && !(k.Status == model.KeySuspended && k.Reason == ReasonDataCap)) {
				continue
			}
			k.SubID, k.Limits, k.CapBase, k.Updated = s.ID, limits, w.usage(k.ID).Total(), m.At
			k.Status, k.Reason = model.KeyActive, ""
			if err := put(w, keys, k); err != nil {
				return err
			}
		}
		return nil
	}, nil
}

// ReasonDataCap marks a credential suspended because it used its data cap.
const ReasonDataCap = "data_cap"

// CreatePayment records a pending payment whose payload names it.
type CreatePayment struct {
	Payment model.Payment `json:"payment"`
}

// Kind implements Command.
func (CreatePayment) Kind() string        { return "payment.create/1" }
func (c CreatePayment) auditUser() string { return c.Payment.UserID }

func (c CreatePayment) plan(v *view, m Meta) (mutation, error) {
	p := c.Payment
	if !model.ValidID(p.ID) || p.Amount <= 0 || p.Provider == "" || p.Currency == "" {
		return nil, fmt.Errorf("payment needs an id, provider, currency and positive amount: %w", model.ErrInvalid)
	}
	if v.bucket(bPayments).Get(str(p.ID)) != nil {
		return nil, fmt.Errorf("payment %s: %w", p.ID, model.ErrExists)
	}
	if _, err := customer(v, p.UserID); err != nil {
		return nil, err
	}
	p.Status, p.Created, p.ProviderChargeID = model.PayPending, m.At, ""
	return func(w *writer) error { return put(w, payments, &p) }, nil
}

// SettlePayment marks a pending payment paid by a provider charge and grants
// what it bought in the same transaction, so a grant exists exactly when its
// payment is paid. A charge id already recorded is refused with ErrExists:
// the same charge is never granted twice. The user's first payment vests the
// credits of whoever referred them.
type SettlePayment struct {
	PaymentID string `json:"payment_id"`
	ChargeID  string `json:"charge_id"`
	Amount    int64  `json:"amount"`
	Currency  string `json:"currency"`
	SubID     string `json:"sub_id,omitempty"`   // decided in advance for plan purchases
	EntryID   string `json:"entry_id,omitempty"` // for credit purchases
	VestID    string `json:"vest_id,omitempty"`  // ledger entry id for the referrer's credits
}

// Kind implements Command.
func (SettlePayment) Kind() string { return "payment.settle/1" }

func (c SettlePayment) plan(v *view, m Meta) (mutation, error) {
	p, err := settleChecks(v, c.PaymentID, c.ChargeID, c.Amount, c.Currency)
	if err != nil {
		return nil, err
	}
	grant, err := productGrant(v, m, p, c)
	if err != nil {
		return nil, err
	}
	return settled(v, m, p, c.ChargeID, c.VestID, grant)
}

// settleChecks are SettlePayment's checks of a payment and its charge.
func settleChecks(v *view, paymentID, chargeID string, amount int64, currency string) (*model.Payment, error) {
	p, err := getByID(v, payments, paymentID)
	if err != nil {
		return nil, fmt.Errorf("payment %s: %w", paymentID, err)
	}
	if chargeID == "" {
		return nil, fmt.Errorf("charge id is required: %w", model.ErrInvalid)
	}
	if v.bucket(iPaymentsCharge).Get(chargeKey(p.Provider, chargeID)) != nil {
		return nil, fmt.Errorf("charge already recorded: %w", model.ErrExists)
	}
	if p.Status != model.PayPending && p.Status != model.PayExpired {
		return nil, fmt.Errorf("payment %s is %s: %w", p.ID, p.Status, model.ErrState)
	}
	if amount != p.Amount || currency != p.Currency {
		return nil, fmt.Errorf("paid %d %s for %d %s: %w", amount, currency, p.Amount, p.Currency, model.ErrInvalid)
	}
	return p, nil
}

// settled is the mutation shared by the settle commands: mark the payment
// paid by its charge, apply what it bought, and vest the referrer's credits
// if this is the user's first payment.
func settled(v *view, m Meta, p *model.Payment, chargeID, vestID string, grant mutation) (mutation, error) {
	vest, err := vestReferral(v, m, p, vestID)
	if err != nil {
		return nil, err
	}
	return func(w *writer) error {
		p.Status, p.ProviderChargeID, p.PaidAt = model.PayPaid, chargeID, m.At
		if err := put(w, payments, p); err != nil {
			return err
		}
		if err := grant(w); err != nil {
			return err
		}
		return vest(w)
	}, nil
}

func productGrant(v *view, m Meta, p *model.Payment, c SettlePayment) (mutation, error) {
	switch p.Product.Kind {
	case "plan":
		months := max(p.Product.Months, 1)
		return planGrant(v, m, GrantPlan{SubID: c.SubID, UserID: p.UserID, PlanID: p.Product.RefID, Months: months, Source: p.ID})
	case "credits":
		return creditGrant(v, m, model.CreditEntry{ID: c.EntryID, UserID: p.UserID, Amount: p.Product.Qty,
			Reason: "purchase", IdempotencyKey: "payment:" + p.ID, RefID: p.ID}, false)
	case "slots":
		u, err := customer(v, p.UserID)
		if err != nil {
			return nil, err
		}
		return func(w *writer) error {
			u.ExtraSlots += int(p.Product.Qty)
			u.Updated = m.At
			return put(w, users, u)
		}, nil
	}
	return nil, fmt.Errorf("product %q: %w", p.Product.Kind, model.ErrInvalid)
}

// vestReferral credits the referrer when the referred user's first payment
// settles. Later payments vest nothing.
func vestReferral(v *view, m Meta, p *model.Payment, entryID string) (mutation, error) {
	noop := func(*writer) error { return nil }
	r, err := getByID(v, referrals, p.UserID)
	if err != nil || r.Vested {
		return noop, nil
	}
	if r.Credits == 0 || entryID == "" {
		return func(w *writer) error {
			r.Vested, r.VestedBy, r.VestedAt = true, p.ID, m.At
			return put(w, referrals, r)
		}, nil
	}
	credit, err := creditGrant(v, m, model.CreditEntry{ID: entryID, UserID: r.ReferrerID, Amount: r.Credits,
		Reason: "referral", IdempotencyKey: "referral:" + r.ReferredID, RefID: p.ID}, false)
	if err != nil {
		return nil, err
	}
	return func(w *writer) error {
		r.Vested, r.VestedBy, r.VestedAt = true, p.ID, m.At
		if err := put(w, referrals, r); err != nil {
			return err
		}
		return credit(w)
	}, nil
}

// AddCredits appends a ledger entry. An idempotency key already used makes
// the command a no-op success, so retries never move credits twice. A
// negative amount must be covered by the balance unless AllowNegative
// (refunds may take a balance below zero).
type AddCredits struct {
	Entry         model.CreditEntry `json:"entry"`
	AllowNegative bool              `json:"allow_negative,omitempty"`
}

// Kind implements Command.
func (AddCredits) Kind() string        { return "credits.add/1" }
func (c AddCredits) auditUser() string { return c.Entry.UserID }

func (c AddCredits) plan(v *view, m Meta) (mutation, error) {
	if _, err := liveUser(v, c.Entry.UserID); err != nil {
		return nil, err
	}
	return creditGrant(v, m, c.Entry, c.AllowNegative)
}

func creditGrant(v *view, m Meta, e model.CreditEntry, allowNegative bool) (mutation, error) {
	if !model.ValidID(e.ID) || e.IdempotencyKey == "" || e.Amount == 0 {
		return nil, fmt.Errorf("ledger entry needs an id, an idempotency key and an amount: %w", model.ErrInvalid)
	}
	if v.bucket(iCreditsIdem).Get(str(e.IdempotencyKey)) != nil {
		return func(*writer) error { return nil }, nil
	}
	if e.Amount < 0 && !allowNegative {
		bal, err := balance(v, e.UserID)
		if err != nil {
			return nil, err
		}
		if bal+e.Amount < 0 {
			return nil, fmt.Errorf("balance %d, need %d: %w", bal, -e.Amount, model.ErrBalance)
		}
	}
	e.Created = m.At
	return func(w *writer) error { return put(w, credits, &e) }, nil
}

// balance sums a user's ledger.
func balance(v *view, userID string) (int64, error) {
	var sum int64
	for _, id := range v.lastParts(iCreditsUser, userPrefix(userID)) {
		e, err := getByID(v, credits, id)
		if err != nil {
			return 0, err
		}
		sum += e.Amount
	}
	return sum, nil
}
