package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// Profile is what a user sees of their own account: their current plan,
// their live credentials with usage, and their balance.
type Profile struct {
	User    *UserView
	Sub     *model.Subscription // nil: no current plan
	Plan    *model.Plan
	Keys    []model.Key   // not revoked, without secrets
	Proxies []model.Proxy // not revoked, without secrets
	// DataUsed is the current period's usage of the active credentials;
	// DataCap the sum of their caps (0: at least one has no cap).
	DataUsed, DataCap uint64
}

// Profile assembles a user's profile.
func (s *Service) Profile(ctx context.Context, userID string) (*Profile, error) {
	v, err := s.User(ctx, userID)
	if err != nil {
		return nil, err
	}
	p := &Profile{User: v}
	sub, plan, err := s.st.CurrentPlan(userID, s.now())
	switch {
	case err == nil:
		p.Sub, p.Plan = sub, plan
	case !errors.Is(err, model.ErrQuota):
		return nil, err
	}
	ks, _, err := s.Keys(ctx, store.KeyFilter{UserID: userID}, store.Page{Limit: store.MaxLimit})
	if err != nil {
		return nil, err
	}
	ps, _, err := s.Proxies(ctx, userID, store.Page{Limit: store.MaxLimit})
	if err != nil {
		return nil, err
	}
	uncapped := false
	for _, k := range ks {
		if k.Status == model.KeyRevoked {
			continue
		}
		p.Keys = append(p.Keys, k)
		if k.Status == model.KeyActive {
			p.DataUsed += k.PeriodUsage()
			p.DataCap += k.Limits.DataCap
			uncapped = uncapped || k.Limits.DataCap == 0
		}
	}
	for _, x := range ps {
		if x.Status == model.KeyRevoked {
			continue
		}
		p.Proxies = append(p.Proxies, x)
		if x.Status == model.KeyActive {
			p.DataUsed += x.PeriodUsage()
			p.DataCap += x.Limits.DataCap
			uncapped = uncapped || x.Limits.DataCap == 0
		}
	}
	if uncapped {
		p.DataCap = 0
	}
	return p, nil
}

// OwnKey returns a user's own key; another user's key is not found, so a
// user can only see or change what is theirs.
func (s *Service) OwnKey(ctx context.Context, userID, keyID string) (*model.Key, error) {
	k, err := s.Key(ctx, keyID)
	if err != nil {
		return nil, err
	}
	if k.UserID != userID {
		return nil, fmt.Errorf("key %s: %w", keyID, model.ErrNotFound)
	}
	return k, nil
}

// OwnProxy returns a user's own MTProto secret (see OwnKey).
func (s *Service) OwnProxy(ctx context.Context, userID, proxyID string) (*model.Proxy, error) {
	p, err := s.Proxy(ctx, proxyID)
	if err != nil {
		return nil, err
	}
	if p.UserID != userID {
		return nil, fmt.Errorf("proxy %s: %w", proxyID, model.ErrNotFound)
	}
	return p, nil
}

// OwnTicket returns a user's own ticket (see OwnKey).
func (s *Service) OwnTicket(ctx context.Context, userID, ticketID string) (*TicketView, error) {
	t, err := s.Ticket(ctx, ticketID)
	if err != nil {
		return nil, err
	}
	if t.UserID != userID {
		return nil, fmt.Errorf("ticket %s: %w", ticketID, model.ErrNotFound)
	}
	return t, nil
}
