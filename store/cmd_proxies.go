package store

import (
	"fmt"

	"github.com/usipipo/usipipo/store/model"
)

// CreateProxy issues an MTProto secret. A user holds at most one active
// secret unless an operator grants more.
type CreateProxy struct {
	ID     string       `json:"id"`
	UserID string       `json:"user_id"`
	Node   string       `json:"node"`
	Grant  Grant        `json:"grant"`
	Limits model.Limits `json:"limits"`
	Secret model.Sealed `json:"secret"`
	// TrialBudget caps the trials the node grants per UTC day (0: none).
	TrialBudget int `json:"trial_budget,omitempty"`
	// Once, when set, applies the command at most once per key (see bOnce).
	Once string `json:"once,omitempty"`
}

// Kind implements Command.
func (CreateProxy) Kind() string        { return "proxy.create/1" }
func (c CreateProxy) auditUser() string { return c.UserID }

func (c CreateProxy) plan(v *view, m Meta) (mutation, error) {
	return once(v, m, c.Once, c.ID, func() (mutation, error) { return c.planOnce(v, m) })
}

func (c CreateProxy) planOnce(v *view, m Meta) (mutation, error) {
	if !model.ValidID(c.ID) || len(c.Secret) == 0 {
		return nil, fmt.Errorf("proxy id and secret are required: %w", model.ErrInvalid)
	}
	if v.bucket(bProxies).Get(str(c.ID)) != nil {
		return nil, fmt.Errorf("proxy %s: %w", c.ID, model.ErrExists)
	}
	u, err := customer(v, c.UserID)
	if err != nil {
		return nil, err
	}
	limits, _, err := grantLimits(v, u, model.MTProto, c.Grant, c.Limits, m)
	if err != nil {
		return nil, err
	}
	count, err := trialCount(v, m, c.Grant, c.TrialBudget)
	if err != nil {
		return nil, err
	}
	return func(w *writer) error {
		if err := count(w); err != nil {
			return err
		}
		p := &model.Proxy{ID: c.ID, UserID: c.UserID, Node: c.Node, Status: model.KeyActive, Limits: limits,
			Secret: c.Secret, Created: m.At, Updated: m.At}
		if c.Grant == ByTrial {
			u.TrialsUsed = append(u.TrialsUsed, model.MTProto)
			u.Updated = m.At
			if err := put(w, users, u); err != nil {
				return err
			}
		}
		return put(w, proxies, p)
	}, nil
}

// SetProxyStatus suspends, restores or revokes an MTProto secret.
type SetProxyStatus struct {
	ProxyID string          `json:"proxy_id"`
	Status  model.KeyStatus `json:"status"`
	Reason  string          `json:"reason,omitempty"`
}

// Kind implements Command.
func (SetProxyStatus) Kind() string { return "proxy.status/1" }

func (c SetProxyStatus) plan(v *view, m Meta) (mutation, error) {
	p, err := getByID(v, proxies, c.ProxyID)
	if err != nil {
		return nil, fmt.Errorf("proxy %s: %w", c.ProxyID, err)
	}
	if err := statusChange(p.Status, c.Status); err != nil {
		return nil, fmt.Errorf("proxy %s: %w", c.ProxyID, err)
	}
	if c.Status == model.KeyActive {
		if _, err := customer(v, p.UserID); err != nil {
			return nil, err
		}
	}
	return func(w *writer) error {
		p.Status, p.Reason, p.Updated = c.Status, c.Reason, m.At
		return put(w, proxies, p)
	}, nil
}
