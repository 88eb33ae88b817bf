package app

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// Policy is the operator's configurable rules, kept as a setting in the
// store so every adapter (and every node) sees the same values.
type Policy struct {
	TrialsEnabled   bool            `json:"trials_enabled"`
	TrialDays       int             `json:"trial_days"`
	TrialDataBytes  uint64          `json:"trial_data_bytes"`
	TrialSpeedBps   uint64          `json:"trial_speed_bps,omitempty"`
	TrialProtocols  []model.KeyType `json:"trial_protocols"`
	ReferralCredits int64           `json:"referral_credits"`
	MaxConnsDefault int             `json:"max_conns_default"`
	// TrialsPerDay is the node-wide budget of free trials granted per UTC
	// day (0: no budget); the store refuses the one past it.
	TrialsPerDay int `json:"trials_per_day,omitempty"`
	// OutlinePrefix is Outline's salt prefix for access keys, one code point
	// (U+0000..U+00FF) per byte as Outline writes it; "" for none.
	OutlinePrefix string `json:"outline_prefix,omitempty"`
}

const settingPolicy = "policy"

// DefaultPolicy is the policy of a new node: a 3-day, 2 GiB trial of every
// protocol, 50 credits per vested referral.
func DefaultPolicy() Policy {
	return Policy{TrialsEnabled: true, TrialDays: 3, TrialDataBytes: 2 << 30,
		TrialProtocols:  []model.KeyType{model.WireGuard, model.Outline, model.MTProto},
		ReferralCredits: 50, MaxConnsDefault: 8}
}

// Policy returns the current policy (the default when none is stored).
func (s *Service) Policy() Policy {
	p := DefaultPolicy()
	st, err := s.st.Setting(settingPolicy)
	if err != nil {
		return p
	}
	if err := json.Unmarshal(st.Value, &p); err != nil {
		s.log.Error("policy_unreadable", "error", err.Error())
		return DefaultPolicy()
	}
	return p
}

// SetPolicy stores a new policy after checking it.
func (s *Service) SetPolicy(ctx context.Context, a Actor, p Policy) error {
	if p.TrialDays < 0 || p.TrialDays > 90 || p.ReferralCredits < 0 || p.MaxConnsDefault < 0 || p.TrialsPerDay < 0 {
		return fmt.Errorf("policy out of range: %w", model.ErrInvalid)
	}
	if err := checkPrefix(p.OutlinePrefix); err != nil {
		return err
	}
	for _, t := range p.TrialProtocols {
		if !t.Valid() {
			return fmt.Errorf("trial protocol %q: %w", t, model.ErrInvalid)
		}
	}
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return s.do(ctx, s.meta(a), store.PutSetting{Name: settingPolicy, Value: b}, "")
}

// trialLimits are the limits of a trial of protocol t starting at now, or
// model.ErrTrialDisabled.
func (p Policy) trialLimits(t model.KeyType, now time.Time) (model.Limits, error) {
	if !p.TrialsEnabled || p.TrialDays == 0 {
		return model.Limits{}, model.ErrTrialDisabled
	}
	for _, x := range p.TrialProtocols {
		if x == t {
			return model.Limits{ExpiresAt: now.Add(time.Duration(p.TrialDays) * 24 * time.Hour),
				DataCap: p.TrialDataBytes, SpeedBps: p.TrialSpeedBps, MaxConns: p.MaxConnsDefault}, nil
		}
	}
	return model.Limits{}, fmt.Errorf("%s: %w", t, model.ErrTrialDisabled)
}
