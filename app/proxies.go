package app

import (
	"context"
	"fmt"

	"github.com/usipipo/usipipo/proxy/mtproto"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

const recProxy = "proxy"

// ProxyRequest asks for a user's MTProto secret.
type ProxyRequest struct {
	UserID string
	Trial  bool
	Admin  bool
	Limits model.Limits
	// Once, when set, issues at most one secret per idempotency key: a
	// repeat returns the first.
	Once string
}

// CreateProxy issues an MTProto secret for a user.
func (s *Service) CreateProxy(ctx context.Context, a Actor, r ProxyRequest) (*model.Proxy, error) {
	m := s.meta(a)
	id, err := s.newID(m.At)
	if err != nil {
		return nil, err
	}
	cmd := store.CreateProxy{ID: id, UserID: r.UserID, Node: s.node, Grant: store.ByPlan, Once: r.Once}
	switch {
	case r.Admin:
		cmd.Grant, cmd.Limits = store.ByAdmin, r.Limits
	case r.Trial:
		pol := s.Policy()
		if cmd.Limits, err = pol.trialLimits(model.MTProto, m.At); err != nil {
			return nil, err
		}
		cmd.Grant, cmd.TrialBudget = store.ByTrial, pol.TrialsPerDay
	}
	key, err := mtproto.NewSecret(s.rand)
	if err != nil {
		return nil, err
	}
	if cmd.Secret, err = s.seal(recProxy, id, key); err != nil {
		return nil, err
	}
	if err := s.do(ctx, m, cmd, r.UserID); err != nil {
		return nil, err
	}
	if id, err = s.onceRef(r.Once, id); err != nil {
		return nil, err
	}
	p, err := s.st.Proxy(id)
	if err != nil {
		return nil, err
	}
	p.Secret = nil
	return p, nil
}

// Proxies lists MTProto secrets of a user (or all), without secrets.
func (s *Service) Proxies(ctx context.Context, userID string, p store.Page) ([]model.Proxy, string, error) {
	ps, next, err := s.st.Proxies(userID, p)
	for i := range ps {
		ps[i].Secret = nil
	}
	return ps, next, err
}

// SetProxyStatus suspends, restores or revokes an MTProto secret.
func (s *Service) SetProxyStatus(ctx context.Context, a Actor, id string, st model.KeyStatus, reason string) error {
	if !model.ValidID(id) {
		return fmt.Errorf("proxy id %q: %w", id, model.ErrInvalid)
	}
	p, err := s.st.Proxy(id)
	if err != nil {
		return err
	}
	return s.do(ctx, s.meta(a), store.SetProxyStatus{ProxyID: id, Status: st, Reason: reason}, p.UserID)
}
