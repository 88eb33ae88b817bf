package pay

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// Revenue is the money received per UTC day and currency (refunds taken
// off the day of their payment).
type Revenue map[string]map[string]int64 // "2006-01-02" → currency → amount

// Revenue sums paid payments settled from since to until.
func (s *Service) Revenue(ctx context.Context, since, until time.Time) (Revenue, error) {
	out := Revenue{}
	err := s.eachPayment(func(p *model.Payment) error {
		if p.Status != model.PayPaid || p.PaidAt.Before(since) || !p.PaidAt.Before(until) {
			return nil
		}
		day := p.PaidAt.UTC().Format(time.DateOnly)
		if out[day] == nil {
			out[day] = map[string]int64{}
		}
		out[day][p.Currency] += p.Amount
		return nil
	})
	return out, err
}

func (s *Service) eachPayment(fn func(*model.Payment) error) error {
	pg := store.Page{Limit: store.MaxLimit}
	for {
		ps, next, err := s.st.Payments("", pg)
		if err != nil {
			return err
		}
		for i := range ps {
			if err := fn(&ps[i]); err != nil {
				return err
			}
		}
		if next == "" {
			return nil
		}
		pg.After = next
	}
}

// Inconsistency is one disagreement between payments, grants and the ledger.
type Inconsistency struct {
	PaymentID string `json:"payment_id,omitempty"`
	UserID    string `json:"user_id"`
	What      string `json:"what"`
}

// CheckLedger proves that payments, grants and the credit ledger agree:
// every paid credit purchase has its ledger entry of the bought amount (and a
// refunded one its reversal), every paid plan purchase its subscription,
// every paid payment a unique charge, and every purchase or refund entry in
// the ledger a payment in the matching state. Disagreements are returned and
// reported to the admins. Run it daily.
func (s *Service) CheckLedger(ctx context.Context) ([]Inconsistency, error) {
	var bad []Inconsistency
	flag := func(p *model.Payment, userID, f string, a ...any) {
		in := Inconsistency{UserID: userID, What: fmt.Sprintf(f, a...)}
		if p != nil {
			in.PaymentID = p.ID
		}
		bad = append(bad, in)
	}
	users := map[string]bool{}
	err := s.eachPayment(func(p *model.Payment) error {
		users[p.UserID] = true
		settled := p.Status == model.PayPaid || p.Status == model.PayRefunded
		if !settled {
			return nil
		}
		if q, err := s.st.PaymentByCharge(p.Provider, p.ProviderChargeID); err != nil || q.ID != p.ID {
			flag(p, p.UserID, "charge %q does not resolve to its payment", p.ProviderChargeID)
		}
		switch p.Product.Kind {
		case KindCredits:
			entries, err := s.userEntries(p.UserID)
			if err != nil {
				return err
			}
			if e, ok := entries["payment:"+p.ID]; !ok || e.Amount != p.Product.Qty {
				flag(p, p.UserID, "paid credits without their ledger entry of %d", p.Product.Qty)
			}
			if e, ok := entries["refund:"+p.ID]; (p.Status == model.PayRefunded) != (ok && e.Amount == -p.Product.Qty) {
				flag(p, p.UserID, "refund and ledger disagree")
			}
		case KindPlan:
			found := false
			subs, _, err := s.st.Subscriptions(p.UserID, store.Page{Limit: store.MaxLimit})
			if err != nil {
				return err
			}
			for _, sub := range subs {
				if sub.Source == p.ID {
					found = true
					if p.Status == model.PayRefunded && sub.Status != model.SubCancelled {
						flag(p, p.UserID, "refunded plan still active")
					}
				}
			}
			if !found {
				flag(p, p.UserID, "paid plan without its subscription")
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Ledger entries that claim a payment.
	for uid := range users {
		entries, err := s.userEntries(uid)
		if err != nil {
			return nil, err
		}
		for key, e := range entries {
			var pid string
			var want []model.PaymentStatus
			switch {
			case strings.HasPrefix(key, "payment:"):
				pid, want = key[len("payment:"):], []model.PaymentStatus{model.PayPaid, model.PayRefunded}
			case strings.HasPrefix(key, "refund:"):
				pid, want = key[len("refund:"):], []model.PaymentStatus{model.PayRefunded}
			default:
				continue
			}
			p, err := s.st.Payment(pid)
			if err != nil || p.UserID != e.UserID || !containsStatus(want, p.Status) {
				flag(nil, e.UserID, "ledger entry %s (%d) without a matching payment", key, e.Amount)
			}
		}
	}
	if len(bad) > 0 {
		s.notifyAdmins(ctx, fmt.Sprintf("⚠️ Ledger check: %d inconsistencies, first: %s", len(bad), bad[0].What))
	}
	return bad, nil
}

func containsStatus(xs []model.PaymentStatus, x model.PaymentStatus) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

func (s *Service) userEntries(userID string) (map[string]model.CreditEntry, error) {
	out := map[string]model.CreditEntry{}
	pg := store.Page{Limit: store.MaxLimit}
	for {
		es, next, err := s.st.Credits(userID, pg)
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			out[e.IdempotencyKey] = e
		}
		if next == "" {
			return out, nil
		}
		pg.After = next
	}
}
