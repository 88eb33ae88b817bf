package store

import (
	"fmt"

	"github.com/usipipo/usipipo/store/model"
)

// SpendCredits pays for a product with credits: one negative ledger entry of
// Cost under IdempotencyKey, and the grant, in the same transaction. A key
// already used makes the command a no-op success (a retry grants nothing
// twice); a balance short of Cost refuses it (ErrBalance). Only data packages
// (for the user's own capped credential) and extra key slots are sold for
// credits. The price is decided by the service layer before the command.
type SpendCredits struct {
	EntryID        string        `json:"entry_id"`
	UserID         string        `json:"user_id"`
	Product        model.Product `json:"product"`
	Cost           int64         `json:"cost"`
	IdempotencyKey string        `json:"idempotency_key"`
}

// Kind implements Command.
func (SpendCredits) Kind() string        { return "credits.spend/1" }
func (c SpendCredits) auditUser() string { return c.UserID }

func (c SpendCredits) plan(v *view, m Meta) (mutation, error) {
	if c.Cost <= 0 || c.Product.Qty <= 0 || c.IdempotencyKey == "" {
		return nil, fmt.Errorf("a credit purchase needs a positive cost and quantity and an idempotency key: %w", model.ErrInvalid)
	}
	if v.bucket(iCreditsIdem).Get(str(c.IdempotencyKey)) != nil {
		return func(*writer) error { return nil }, nil
	}
	u, err := customer(v, c.UserID)
	if err != nil {
		return nil, err
	}
	var grant mutation
	switch c.Product.Kind {
	case ProductData:
		if grant, err = dataChange(v, m, u.ID, c.Product.RefID, c.Product.Qty); err != nil {
			return nil, err
		}
	case "slots":
		if c.Product.RefID != "" || c.Product.Months != 0 {
			return nil, fmt.Errorf("slots product is malformed: %w", model.ErrInvalid)
		}
		grant = func(w *writer) error {
			u.ExtraSlots += int(c.Product.Qty)
			u.Updated = m.At
			return put(w, users, u)
		}
	default:
		return nil, fmt.Errorf("%q is not sold for credits: %w", c.Product.Kind, model.ErrInvalid)
	}
	debit, err := creditGrant(v, m, model.CreditEntry{ID: c.EntryID, UserID: u.ID, Amount: -c.Cost,
		Reason: "spend:" + c.Product.Kind, IdempotencyKey: c.IdempotencyKey}, false)
	if err != nil {
		return nil, err
	}
	return func(w *writer) error {
		if err := debit(w); err != nil {
			return err
		}
		return grant(w)
	}, nil
}

// ReasonPlanRevoked marks a credential suspended because an operator revoked
// the plan it belonged to.
const ReasonPlanRevoked = "plan_revoked"

// RevokeSubscription ends a subscription now (an operator's decision: abuse,
// a gift withdrawn). Its keys move to the user's plan that is still current,
// with that plan's limits, or are suspended when none is.
type RevokeSubscription struct {
	UserID string `json:"user_id"` // the subscription's holder, checked
	SubID  string `json:"sub_id"`
	Reason string `json:"reason,omitempty"`
}

// Kind implements Command.
func (RevokeSubscription) Kind() string        { return "plan.revoke/1" }
func (c RevokeSubscription) auditUser() string { return c.UserID }

func (c RevokeSubscription) plan(v *view, m Meta) (mutation, error) {
	sub, err := getByID(v, subs, c.SubID)
	if err != nil {
		return nil, fmt.Errorf("subscription %s: %w", c.SubID, err)
	}
	if sub.UserID != c.UserID {
		return nil, fmt.Errorf("subscription %s is not user %s's: %w", sub.ID, c.UserID, model.ErrNotFound)
	}
	if sub.Status != model.SubActive || !m.At.Before(sub.ExpiresAt) {
		return nil, fmt.Errorf("subscription %s is %s or over: %w", sub.ID, sub.Status, model.ErrState)
	}
	all, err := userSubs(v, sub.UserID)
	if err != nil {
		return nil, err
	}
	moved, err := rehomeKeys(v, sub.UserID, latestCurrent(all, sub.ID, m.At),
		func(k *model.Key) bool { return k.SubID == sub.ID }, ReasonPlanRevoked, m.At)
	if err != nil {
		return nil, err
	}
	return func(w *writer) error {
		sub.Status = model.SubCancelled
		if err := put(w, subs, sub); err != nil {
			return err
		}
		for _, k := range moved {
			if err := put(w, keys, k); err != nil {
				return err
			}
		}
		return nil
	}, nil
}
