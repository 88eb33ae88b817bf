package app

import (
	"context"
	"fmt"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// Payment reads for the API and the panel. Refunds and settlements belong
// to app/pay; these only list and show.

// PaymentFilter narrows Payments. Zero fields match everything.
type PaymentFilter struct {
	UserID   string
	Status   model.PaymentStatus
	Provider string
}

func (f PaymentFilter) match(p *model.Payment) bool {
	return (f.Status == "" || p.Status == f.Status) && (f.Provider == "" || p.Provider == f.Provider)
}

func (f PaymentFilter) valid() error {
	switch f.Status {
	case "", model.PayPending, model.PayPaid, model.PayRefunded, model.PayFailed, model.PayExpired:
	default:
		return fmt.Errorf("payment status %q: %w", f.Status, model.ErrInvalid)
	}
	if f.UserID != "" && !model.ValidID(f.UserID) {
		return fmt.Errorf("user id %q: %w", f.UserID, model.ErrInvalid)
	}
	if len(f.Provider) > 32 {
		return fmt.Errorf("provider: %w", model.ErrInvalid)
	}
	return nil
}

// Payments lists payments: a user's newest first through their index, or
// all in creation order. Status and provider filter after the scan, so a
// page may hold fewer than p.Limit payments while its cursor is not empty
// (at most listScanLimit records are read per call).
func (s *Service) Payments(ctx context.Context, f PaymentFilter, p store.Page) ([]model.Payment, string, error) {
	if err := f.valid(); err != nil {
		return nil, "", err
	}
	limit := min(max(p.Limit, 0), store.MaxLimit)
	if limit == 0 {
		limit = store.DefaultLimit
	}
	out := []model.Payment{}
	scanned := 0
	for len(out) < limit && scanned < listScanLimit {
		ps, next, err := s.st.Payments(f.UserID, store.Page{After: p.After, Limit: limit - len(out)})
		if err != nil {
			return nil, "", err
		}
		scanned += len(ps)
		for i := range ps {
			if f.match(&ps[i]) {
				out = append(out, redactPayment(ps[i]))
			}
		}
		p.After = next
		if next == "" {
			break
		}
	}
	return out, p.After, nil
}

// Payment returns one payment.
func (s *Service) Payment(ctx context.Context, id string) (*model.Payment, error) {
	if !model.ValidID(id) {
		return nil, fmt.Errorf("payment id %q: %w", id, model.ErrInvalid)
	}
	p, err := s.st.Payment(id)
	if err != nil {
		return nil, err
	}
	r := redactPayment(*p)
	return &r, nil
}

// redactPayment drops the signed invoice payload: it names the payment to
// the provider and has no use for a reader.
func redactPayment(p model.Payment) model.Payment {
	p.Payload = ""
	return p
}
