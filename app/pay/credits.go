package pay

import (
	"context"
	"fmt"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// CreditCost is what a product costs in credits, from the one price
// function: one credit is worth one Star (the credit packages sell them at
// about that). Only data packages and extra key slots are sold for credits;
// plans are not, so credits never become free trials.
func (s *Service) CreditCost(pr Product) (int64, error) {
	if pr.Kind != KindData && pr.Kind != KindSlots {
		return 0, fmt.Errorf("%s for credits: %w", pr.Kind, ErrNotForSale)
	}
	p, err := s.price(s.Catalogue(), pr)
	if err != nil {
		return 0, err
	}
	if p.Stars <= 0 {
		return 0, fmt.Errorf("%s has no price: %w", pr.Kind, ErrNotForSale)
	}
	return p.Stars, nil
}

// SpendCredits buys a data package or extra key slots with the user's
// credits: one ledger debit under idemKey and the grant, in one store
// command. idemKey names one intent of the user (a button press): a retry
// with the same key debits and grants once. A balance short of the cost is
// refused with model.ErrBalance and nothing moves. It returns the new
// balance.
func (s *Service) SpendCredits(ctx context.Context, a Actor, userID string, pr Product, idemKey string) (int64, error) {
	if idemKey == "" || len(idemKey) > 200 {
		return 0, fmt.Errorf("an idempotency key of at most 200 bytes is required: %w", model.ErrInvalid)
	}
	cost, err := s.CreditCost(pr)
	if err != nil {
		return 0, err
	}
	if pr.Kind == KindData {
		if err := s.dataTarget(userID, pr.RefID); err != nil {
			return 0, err
		}
	}
	m := s.meta(a)
	id, err := s.newID(m.At)
	if err != nil {
		return 0, err
	}
	cmd := store.SpendCredits{EntryID: id, UserID: userID, Product: pr, Cost: cost, IdempotencyKey: "spend:" + idemKey}
	if err := s.do(ctx, m, cmd, userID); err != nil {
		return 0, err
	}
	return s.st.Balance(userID)
}
