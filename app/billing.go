package app

import (
	"context"
	"fmt"
	"strings"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// PlanSpec describes a plan to create or replace.
type PlanSpec struct {
	ID            string // empty: a new plan
	Name          string
	DurationDays  int
	DataCapBytes  uint64
	SpeedBps      uint64
	ThrottleBps   uint64
	MaxKeys       int
	MaxConns      int
	Protocols     []model.KeyType
	PriceStars    int64
	PriceUSDCents int64
	Inactive      bool
}

// PutPlan creates or replaces a plan.
func (s *Service) PutPlan(ctx context.Context, a Actor, p PlanSpec) (*model.Plan, error) {
	m := s.meta(a)
	if p.ID == "" {
		id, err := s.newID(m.At)
		if err != nil {
			return nil, err
		}
		p.ID = id
	}
	if len(p.Protocols) == 0 {
		p.Protocols = []model.KeyType{model.WireGuard, model.Outline}
	}
	plan := model.Plan{ID: p.ID, Name: strings.TrimSpace(p.Name), DurationDays: p.DurationDays, DataCapBytes: p.DataCapBytes,
		SpeedBps: p.SpeedBps, ThrottleBps: p.ThrottleBps, MaxKeys: p.MaxKeys, MaxConns: p.MaxConns,
		Protocols: p.Protocols, PriceStars: p.PriceStars, PriceUSDCents: p.PriceUSDCents, Active: !p.Inactive}
	if err := s.do(ctx, m, store.PutPlan{Plan: plan}, ""); err != nil {
		return nil, err
	}
	return s.st.Plan(p.ID)
}

// Plans lists plans.
func (s *Service) Plans(ctx context.Context, p store.Page) ([]model.Plan, string, error) {
	return s.st.Plans(p)
}

// ListPlans lists the plans matching f (the API's filtered list).
func (s *Service) ListPlans(ctx context.Context, f store.PlanFilter, p store.Page) ([]model.Plan, string, error) {
	if f.Protocol != "" && !f.Protocol.Valid() {
		return nil, "", fmt.Errorf("protocol %q: %w", f.Protocol, model.ErrInvalid)
	}
	return s.st.PlansWhere(f, p)
}

// GrantPlan gives a user a plan for some months (an operator's grant or a
// gift); a renewal of the same plan extends it.
func (s *Service) GrantPlan(ctx context.Context, a Actor, userID, planID string, months, days int) (*model.Subscription, error) {
	return s.GrantPlanOnce(ctx, a, "", userID, planID, months, days)
}

// GrantPlanOnce is GrantPlan applied at most once per idempotency key
// (none when empty): a repeat extends nothing and returns the first grant.
func (s *Service) GrantPlanOnce(ctx context.Context, a Actor, key, userID, planID string, months, days int) (*model.Subscription, error) {
	m := s.meta(a)
	id, err := s.newID(m.At)
	if err != nil {
		return nil, err
	}
	cmd := store.GrantPlan{SubID: id, UserID: userID, PlanID: planID, Months: months, Days: days, Source: string(a), Once: key}
	if err := s.do(ctx, m, cmd, userID); err != nil {
		return nil, err
	}
	if id, err = s.onceRef(key, id); err != nil {
		return nil, err
	}
	subs, _, err := s.st.Subscriptions(userID, store.Page{Limit: store.MaxLimit})
	if err != nil {
		return nil, err
	}
	for i := range subs {
		if subs[i].ID == id {
			return &subs[i], nil
		}
	}
	return nil, fmt.Errorf("subscription %s: %w", id, model.ErrNotFound)
}

// AddCredits moves credits for a user once per idempotency key. A negative
// amount spends and must be covered by the balance.
func (s *Service) AddCredits(ctx context.Context, a Actor, userID string, amount int64, reason, idemKey string) (int64, error) {
	if idemKey == "" {
		return 0, fmt.Errorf("an idempotency key is required: %w", model.ErrInvalid)
	}
	m := s.meta(a)
	id, err := s.newID(m.At)
	if err != nil {
		return 0, err
	}
	e := model.CreditEntry{ID: id, UserID: userID, Amount: amount, Reason: reason, IdempotencyKey: idemKey}
	if err := s.do(ctx, m, store.AddCredits{Entry: e}, userID); err != nil {
		return 0, err
	}
	return s.st.Balance(userID)
}

// ReferralSummary is what a user sees of their referrals.
type ReferralSummary struct {
	Code    string `json:"code"`
	Invited int    `json:"invited"`
	Vested  int    `json:"vested"`
	Earned  int64  `json:"earned"`
	Pending int64  `json:"pending"`
}

// Referrals summarises the users a user invited.
func (s *Service) Referrals(ctx context.Context, userID string) (*ReferralSummary, error) {
	u, err := s.st.User(userID)
	if err != nil {
		return nil, err
	}
	out := &ReferralSummary{Code: u.ReferralCode}
	p := store.Page{Limit: store.MaxLimit}
	for {
		rs, next, err := s.st.Referrals(userID, p)
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			out.Invited++
			if r.Vested {
				out.Vested++
				out.Earned += r.Credits
			} else {
				out.Pending += r.Credits
			}
		}
		if next == "" {
			return out, nil
		}
		p.After = next
	}
}
