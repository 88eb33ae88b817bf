package store

import (
	"fmt"
	"strconv"
	"time"

	"github.com/usipipo/usipipo/store/model"
)

// CreateUser registers a user. UserKey is the user's personal-data key,
// sealed under the node's data key; it is kept in its own bucket and never in
// the audit trail, so erasing it makes Personal unreadable everywhere.
type CreateUser struct {
	ID              string       `json:"id"`
	TelegramID      int64        `json:"telegram_id,omitempty"`
	Personal        model.Sealed `json:"personal,omitempty"`
	UserKey         model.Sealed `json:"user_key"`
	Language        string       `json:"language"`
	ReferralCode    string       `json:"referral_code"`
	ReferredBy      string       `json:"referred_by,omitempty"`
	ReferralCredits int64        `json:"referral_credits,omitempty"`
	// TrialGuard is the keyed hash of TelegramID (see bTrialGuard): trials an
	// erased account with the same hash used stay used.
	TrialGuard string `json:"trial_guard,omitempty"`
}

// Kind implements Command.
func (CreateUser) Kind() string        { return "user.create/1" }
func (c CreateUser) auditUser() string { return c.ID }

// redacted drops the user key and the Telegram id: the audit trail outlives
// an erasure, and a Telegram id kept there in clear would name an erased
// user (the trial guard keeps only a keyed hash of it).
func (c CreateUser) redacted() any {
	c.UserKey, c.TelegramID = nil, 0
	return c
}

func (c CreateUser) plan(v *view, m Meta) (mutation, error) {
	if !model.ValidID(c.ID) || c.ReferralCode == "" || len(c.UserKey) == 0 {
		return nil, fmt.Errorf("user id, referral code and key are required: %w", model.ErrInvalid)
	}
	if v.bucket(bUsers).Get(str(c.ID)) != nil {
		return nil, fmt.Errorf("user %s: %w", c.ID, model.ErrExists)
	}
	if c.TelegramID != 0 && v.bucket(iUsersTG).Get(tgKey(c.TelegramID)) != nil {
		return nil, fmt.Errorf("telegram id %d: %w", c.TelegramID, model.ErrExists)
	}
	if v.bucket(iUsersRef).Get(str(c.ReferralCode)) != nil {
		return nil, fmt.Errorf("referral code: %w", model.ErrExists)
	}
	if !validGuard(c.TrialGuard) {
		return nil, fmt.Errorf("trial guard: %w", model.ErrInvalid)
	}
	used, err := guardedTrials(v, c.TrialGuard)
	if err != nil {
		return nil, err
	}
	if c.ReferredBy != "" {
		ref, err := getByID(v, users, c.ReferredBy)
		if err != nil {
			return nil, fmt.Errorf("referrer %s: %w", c.ReferredBy, err)
		}
		if ref.Erased || ref.Banned {
			return nil, fmt.Errorf("referrer %s: %w", c.ReferredBy, model.ErrState)
		}
	}
	return func(w *writer) error {
		u := &model.User{ID: c.ID, TelegramID: c.TelegramID, Personal: c.Personal, Language: c.Language,
			ReferralCode: c.ReferralCode, ReferredBy: c.ReferredBy, TrialsUsed: used, Created: m.At, Updated: m.At}
		if err := w.tx.Bucket(bUserKeys).Put(str(c.ID), c.UserKey); err != nil {
			return err
		}
		if c.ReferredBy != "" {
			r := &model.Referral{ReferredID: c.ID, ReferrerID: c.ReferredBy, Credits: c.ReferralCredits, Created: m.At}
			if err := put(w, referrals, r); err != nil {
				return err
			}
		}
		return put(w, users, u)
	}, nil
}

func tgKey(id int64) []byte { return str(strconv.FormatInt(id, 10)) }

// UpdateUser changes a user's language and, when Personal is set, their
// sealed personal fields.
type UpdateUser struct {
	UserID   string       `json:"user_id"`
	Language string       `json:"language,omitempty"`
	Personal model.Sealed `json:"personal,omitempty"`
}

// Kind implements Command.
func (UpdateUser) Kind() string        { return "user.update/1" }
func (c UpdateUser) auditUser() string { return c.UserID }

func (c UpdateUser) plan(v *view, m Meta) (mutation, error) {
	u, err := liveUser(v, c.UserID)
	if err != nil {
		return nil, err
	}
	return func(w *writer) error {
		if c.Language != "" {
			u.Language = c.Language
		}
		if c.Personal != nil {
			u.Personal = c.Personal
		}
		u.Updated = m.At
		return put(w, users, u)
	}, nil
}

// liveUser loads a user that exists and has not been erased.
func liveUser(v *view, id string) (*model.User, error) {
	u, err := getByID(v, users, id)
	if err != nil {
		return nil, fmt.Errorf("user %s: %w", id, err)
	}
	if u.Erased {
		return nil, fmt.Errorf("user %s: %w", id, model.ErrErased)
	}
	return u, nil
}

// SetBanned bans or unbans a user. A ban suspends nothing by itself: the
// service layer revokes or suspends keys in the same batch if it wants to;
// the reconcile loop stops serving a banned user's credentials.
type SetBanned struct {
	UserID string `json:"user_id"`
	Banned bool   `json:"banned"`
	Reason string `json:"reason,omitempty"`
}

// Kind implements Command.
func (SetBanned) Kind() string        { return "user.ban/1" }
func (c SetBanned) auditUser() string { return c.UserID }

func (c SetBanned) plan(v *view, m Meta) (mutation, error) {
	u, err := liveUser(v, c.UserID)
	if err != nil {
		return nil, err
	}
	if u.Banned == c.Banned {
		return nil, fmt.Errorf("user %s banned=%v already: %w", c.UserID, c.Banned, model.ErrState)
	}
	return func(w *writer) error {
		u.Banned, u.BanReason, u.Updated = c.Banned, c.Reason, m.At
		if !c.Banned {
			u.BanReason = ""
		}
		return put(w, users, u)
	}, nil
}

// GrantRole gives a user a role until ExpiresAt (zero: none). Granting a
// role the user holds replaces its expiry.
type GrantRole struct {
	UserID    string     `json:"user_id"`
	Role      model.Role `json:"role"`
	ExpiresAt time.Time  `json:"expires_at,omitzero"`
	Revoke    bool       `json:"revoke,omitempty"`
}

// Kind implements Command.
func (GrantRole) Kind() string        { return "user.role/1" }
func (c GrantRole) auditUser() string { return c.UserID }

func (c GrantRole) plan(v *view, m Meta) (mutation, error) {
	if c.Role != model.RoleAdmin && c.Role != model.RoleSuperadmin {
		return nil, fmt.Errorf("role %q: %w", c.Role, model.ErrInvalid)
	}
	u, err := liveUser(v, c.UserID)
	if err != nil {
		return nil, err
	}
	return func(w *writer) error {
		kept := u.Roles[:0]
		for _, g := range u.Roles {
			if g.Role != c.Role {
				kept = append(kept, g)
			}
		}
		u.Roles = kept
		if !c.Revoke {
			u.Roles = append(u.Roles, model.RoleGrant{Role: c.Role, ExpiresAt: c.ExpiresAt, GrantedBy: m.Actor})
		}
		if len(u.Roles) == 0 {
			u.Roles = nil
		}
		u.Updated = m.At
		return put(w, users, u)
	}, nil
}

// EraseUser forgets a user (GDPR): their personal key is destroyed, so every
// sealed personal field in records and history becomes unreadable; their
// Telegram id is unlinked; every key and proxy is revoked. Payments and the
// ledger stay, for the books, tied to an id that names no one.
type EraseUser struct {
	UserID string `json:"user_id"`
	// TrialGuard is the keyed hash of the user's Telegram id: the trials
	// they used are kept under it, so registering again gives none back.
	TrialGuard string `json:"trial_guard,omitempty"`
}

// Kind implements Command.
func (EraseUser) Kind() string        { return "user.erase/1" }
func (c EraseUser) auditUser() string { return c.UserID }

func (c EraseUser) plan(v *view, m Meta) (mutation, error) {
	u, err := liveUser(v, c.UserID)
	if err != nil {
		return nil, err
	}
	if !validGuard(c.TrialGuard) {
		return nil, fmt.Errorf("trial guard: %w", model.ErrInvalid)
	}
	keyIDs := v.lastParts(iKeysUserStatus, userPrefix(c.UserID))
	proxyIDs := v.lastParts(iProxiesUser, userPrefix(c.UserID))
	return func(w *writer) error {
		if err := w.tx.Bucket(bUserKeys).Delete(str(c.UserID)); err != nil {
			return err
		}
		if err := rememberTrials(w, c.TrialGuard, u.TrialsUsed); err != nil {
			return err
		}
		for _, id := range keyIDs {
			k, err := getByID(&w.view, keys, id)
			if err != nil {
				return err
			}
			if k.Status != model.KeyRevoked {
				k.Status, k.Reason, k.Updated = model.KeyRevoked, "erased", m.At
				if err := put(w, keys, k); err != nil {
					return err
				}
			}
		}
		for _, id := range proxyIDs {
			p, err := getByID(&w.view, proxies, id)
			if err != nil {
				return err
			}
			if p.Status != model.KeyRevoked {
				p.Status, p.Reason, p.Updated = model.KeyRevoked, "erased", m.At
				if err := put(w, proxies, p); err != nil {
					return err
				}
			}
		}
		*u = model.User{ID: u.ID, Language: u.Language, ReferralCode: u.ReferralCode, ReferredBy: u.ReferredBy,
			ExtraSlots: u.ExtraSlots, TrialsUsed: u.TrialsUsed, Erased: true, Created: u.Created, Updated: m.At, Version: u.Version}
		return put(w, users, u)
	}, nil
}
