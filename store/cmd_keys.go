package store

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/usipipo/usipipo/store/model"
)

// Grant says on what ground a credential is issued, which decides the
// checks apply makes.
type Grant string

// Grants.
const (
	ByPlan  Grant = "plan"  // within the user's current plan: protocol and key quota checked
	ByTrial Grant = "trial" // one per user and protocol; limits from the trial policy
	ByAdmin Grant = "admin" // issued by an operator with explicit limits
)

// CreateKey issues a WireGuard or Outline key. For GrantPlan its limits are
// taken from the current subscription inside the transaction, so two
// concurrent creations cannot both pass a quota of one.
type CreateKey struct {
	ID     string        `json:"id"`
	UserID string        `json:"user_id"`
	Type   model.KeyType `json:"type"`
	Name   string        `json:"name"`
	Node   string        `json:"node"`
	Grant  Grant         `json:"grant"`
	Limits model.Limits  `json:"limits"` // for trial and admin grants
	Secret model.Sealed  `json:"secret"`
	Public string        `json:"public,omitempty"`
	AddrV4 string        `json:"addr_v4,omitempty"`
	AddrV6 string        `json:"addr_v6,omitempty"`
	// Dynamic and DynHash: an Outline key's sealed ssconf:// token and its
	// hex SHA-256 (both or neither).
	Dynamic model.Sealed `json:"dynamic,omitempty"`
	DynHash string       `json:"dyn_hash,omitempty"`
	// TrialBudget caps the trials the node grants per UTC day (0: none).
	TrialBudget int `json:"trial_budget,omitempty"`
	// Once, when set, applies the command at most once per key (see bOnce).
	Once string `json:"once,omitempty"`
}

// Kind implements Command.
func (CreateKey) Kind() string        { return "key.create/1" }
func (c CreateKey) auditUser() string { return c.UserID }

func (c CreateKey) plan(v *view, m Meta) (mutation, error) {
	return once(v, m, c.Once, c.ID, func() (mutation, error) { return c.planOnce(v, m) })
}

func (c CreateKey) planOnce(v *view, m Meta) (mutation, error) {
	if !model.ValidID(c.ID) || (c.Type != model.WireGuard && c.Type != model.Outline) || len(c.Secret) == 0 {
		return nil, fmt.Errorf("key id, type and secret are required: %w", model.ErrInvalid)
	}
	if v.bucket(bKeys).Get(str(c.ID)) != nil {
		return nil, fmt.Errorf("key %s: %w", c.ID, model.ErrExists)
	}
	u, err := customer(v, c.UserID)
	if err != nil {
		return nil, err
	}
	for _, a := range []string{c.AddrV4, c.AddrV6} {
		if a != "" && v.bucket(iKeysAddr).Get(str(a)) != nil {
			return nil, fmt.Errorf("address %s: %w", a, model.ErrExists)
		}
	}
	if err := checkDynamic(v, c.ID, c.Dynamic, c.DynHash); err != nil {
		return nil, err
	}
	if c.DynHash != "" && c.Type != model.Outline {
		return nil, fmt.Errorf("only Outline keys have dynamic tokens: %w", model.ErrInvalid)
	}
	limits, subID, err := grantLimits(v, u, c.Type, c.Grant, c.Limits, m)
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
		k := &model.Key{ID: c.ID, UserID: c.UserID, Type: c.Type, Node: c.Node, Name: c.Name, Status: model.KeyActive,
			Trial: c.Grant == ByTrial, SubID: subID, Limits: limits, Secret: c.Secret, Public: c.Public,
			AddrV4: c.AddrV4, AddrV6: c.AddrV6, Dynamic: c.Dynamic, DynHash: c.DynHash, Created: m.At, Updated: m.At}
		if c.Grant == ByTrial {
			u.TrialsUsed = append(u.TrialsUsed, c.Type)
			u.Updated = m.At
			if err := put(w, users, u); err != nil {
				return err
			}
		}
		return put(w, keys, k)
	}, nil
}

// checkDynamic checks a key's dynamic token: sealed token and hash given
// together, the hash 64 hex digits and not another key's.
func checkDynamic(v *view, keyID string, sealed model.Sealed, hash string) error {
	if (len(sealed) == 0) != (hash == "") {
		return fmt.Errorf("dynamic token and its hash go together: %w", model.ErrInvalid)
	}
	if hash == "" {
		return nil
	}
	if len(hash) != 64 || strings.Trim(hash, "0123456789abcdef") != "" {
		return fmt.Errorf("dynamic token hash: %w", model.ErrInvalid)
	}
	if id := v.bucket(iKeysDynamic).Get(str(hash)); id != nil && string(id) != keyID {
		return fmt.Errorf("dynamic token: %w", model.ErrExists)
	}
	return nil
}

// customer loads a user who may receive credentials.
func customer(v *view, id string) (*model.User, error) {
	u, err := liveUser(v, id)
	if err != nil {
		return nil, err
	}
	if u.Banned {
		return nil, fmt.Errorf("user %s: %w", id, model.ErrBanned)
	}
	return u, nil
}

// grantLimits checks the ground of a new credential and returns its limits.
func grantLimits(v *view, u *model.User, t model.KeyType, g Grant, given model.Limits, m Meta) (model.Limits, string, error) {
	switch g {
	case ByAdmin:
		return given, "", nil
	case ByTrial:
		if slices.Contains(u.TrialsUsed, t) {
			return model.Limits{}, "", fmt.Errorf("%s trial: %w", t, model.ErrTrialUsed)
		}
		if given.ExpiresAt.IsZero() || !given.ExpiresAt.After(m.At) {
			return model.Limits{}, "", fmt.Errorf("a trial needs a future expiry: %w", model.ErrInvalid)
		}
		return given, "", nil
	case ByPlan:
		sub, plan, err := currentPlan(v, u.ID, m)
		if err != nil {
			return model.Limits{}, "", err
		}
		if !plan.Allows(t) {
			return model.Limits{}, "", fmt.Errorf("plan %s, %s: %w", plan.Name, t, model.ErrProtocol)
		}
		used := credentialsInUse(v, u.ID, t)
		quota := plan.MaxKeys + u.ExtraSlots
		if t == model.MTProto {
			quota = 1
		}
		if used >= quota {
			return model.Limits{}, "", fmt.Errorf("%d of %d in use: %w", used, quota, model.ErrQuota)
		}
		return planLimits(plan, sub), sub.ID, nil
	}
	return model.Limits{}, "", fmt.Errorf("grant %q: %w", g, model.ErrInvalid)
}

func planLimits(p *model.Plan, s *model.Subscription) model.Limits {
	return model.Limits{ExpiresAt: s.ExpiresAt, DataCap: p.DataCapBytes, SpeedBps: p.SpeedBps,
		ThrottleBps: p.ThrottleBps, MaxConns: p.MaxConns}
}

// credentialsInUse counts the user's active and suspended credentials that
// their plan granted, of kind t's family (keys share one quota; MTProto
// secrets have their own). Trial and operator-issued credentials are extras.
func credentialsInUse(v *view, userID string, t model.KeyType) int {
	if t == model.MTProto {
		return v.countPrefix(iProxiesActive, userPrefix(userID))
	}
	n := 0
	for _, st := range []model.KeyStatus{model.KeyActive, model.KeySuspended} {
		for _, id := range v.lastParts(iKeysUserStatus, compose(str(userID), str(string(st)), nil)) {
			if k, err := getByID(v, keys, id); err == nil && k.SubID != "" {
				n++
			}
		}
	}
	return n
}

// currentPlan finds the user's subscription that is current at m.At and
// expires last, and its plan.
func currentPlan(v *view, userID string, m Meta) (*model.Subscription, *model.Plan, error) {
	prefix := userPrefix(userID)
	c := v.bucket(iSubsUser).Cursor()
	var best *model.Subscription
	for k, _ := c.Seek(compose(str(userID), ascTime(m.At))); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		s, err := getByID(v, subs, string(k[bytes.LastIndexByte(k, sep)+1:]))
		if err != nil {
			return nil, nil, err
		}
		if s.CurrentAt(m.At) {
			best = s
		}
	}
	if best == nil {
		return nil, nil, fmt.Errorf("user %s has no current plan: %w", userID, model.ErrQuota)
	}
	p, err := getByID(v, plans, best.PlanID)
	if err != nil {
		return nil, nil, fmt.Errorf("plan %s: %w", best.PlanID, err)
	}
	return best, p, nil
}

// SetKeyStatus suspends, restores or revokes a key. Revoked is final.
type SetKeyStatus struct {
	KeyID  string          `json:"key_id"`
	Status model.KeyStatus `json:"status"`
	Reason string          `json:"reason,omitempty"`
}

// Kind implements Command.
func (SetKeyStatus) Kind() string { return "key.status/1" }

func (c SetKeyStatus) plan(v *view, m Meta) (mutation, error) {
	k, err := getByID(v, keys, c.KeyID)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", c.KeyID, err)
	}
	if err := statusChange(k.Status, c.Status); err != nil {
		return nil, fmt.Errorf("key %s: %w", c.KeyID, err)
	}
	if c.Status == model.KeyActive {
		if _, err := customer(v, k.UserID); err != nil {
			return nil, err
		}
	}
	return func(w *writer) error {
		k.Status, k.Reason, k.Updated = c.Status, c.Reason, m.At
		return put(w, keys, k)
	}, nil
}

func statusChange(from, to model.KeyStatus) error {
	if !to.Valid() {
		return fmt.Errorf("status %q: %w", to, model.ErrInvalid)
	}
	if from == model.KeyRevoked || from == to {
		return fmt.Errorf("%s to %s: %w", from, to, model.ErrState)
	}
	return nil
}

// UpdateKey renames a key, replaces its limits, or rotates its secret (a new
// keypair with the same tunnel addresses; the old one stops at once because
// the data plane is handed the new public key), or gives an Outline key a
// dynamic token (keys created before tokens existed; a rotation keeps it).
type UpdateKey struct {
	KeyID   string        `json:"key_id"`
	Name    string        `json:"name,omitempty"`
	Limits  *model.Limits `json:"limits,omitempty"`
	Secret  model.Sealed  `json:"secret,omitempty"`
	Public  string        `json:"public,omitempty"`
	Dynamic model.Sealed  `json:"dynamic,omitempty"`
	DynHash string        `json:"dyn_hash,omitempty"`
	// Once, when set, applies the command at most once per key (see bOnce).
	Once string `json:"once,omitempty"`
}

// Kind implements Command.
func (UpdateKey) Kind() string { return "key.update/1" }

func (c UpdateKey) plan(v *view, m Meta) (mutation, error) {
	return once(v, m, c.Once, c.KeyID, func() (mutation, error) { return c.planOnce(v, m) })
}

func (c UpdateKey) planOnce(v *view, m Meta) (mutation, error) {
	k, err := getByID(v, keys, c.KeyID)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", c.KeyID, err)
	}
	if k.Status == model.KeyRevoked {
		return nil, fmt.Errorf("key %s is revoked: %w", c.KeyID, model.ErrState)
	}
	if err := checkDynamic(v, c.KeyID, c.Dynamic, c.DynHash); err != nil {
		return nil, err
	}
	if c.DynHash != "" && k.Type != model.Outline {
		return nil, fmt.Errorf("key %s: only Outline keys have dynamic tokens: %w", c.KeyID, model.ErrInvalid)
	}
	return func(w *writer) error {
		if c.Name != "" {
			k.Name = c.Name
		}
		if c.Limits != nil {
			k.Limits = *c.Limits
		}
		if c.Secret != nil {
			k.Secret, k.Public = c.Secret, c.Public
		}
		if c.DynHash != "" {
			k.Dynamic, k.DynHash = c.Dynamic, c.DynHash
		}
		k.Updated = m.At
		return put(w, keys, k)
	}, nil
}

// ExpireKeys records that keys reached their expiry. The data planes already
// stopped serving them at ExpiresAt; this only makes the state say so. Keys
// not yet expired at m.At, or no longer active, are skipped.
type ExpireKeys struct {
	KeyIDs []string `json:"key_ids"`
}

// Kind implements Command.
func (ExpireKeys) Kind() string { return "key.expire/1" }

func (c ExpireKeys) plan(v *view, m Meta) (mutation, error) {
	var due []*model.Key
	for _, id := range c.KeyIDs {
		k, err := getByID(v, keys, id)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", id, err)
		}
		if k.Status == model.KeyActive && !k.Limits.ExpiresAt.IsZero() && !m.At.Before(k.Limits.ExpiresAt) {
			due = append(due, k)
		}
	}
	return func(w *writer) error {
		for _, k := range due {
			k.Status, k.Reason, k.Updated = model.KeyExpired, "expired", m.At
			if err := put(w, keys, k); err != nil {
				return err
			}
		}
		return nil
	}, nil
}
