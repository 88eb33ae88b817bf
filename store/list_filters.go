package store

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/usipipo/usipipo/store/model"
)

// Filtered lists: the filter runs inside the page's scan, so a page holds up
// to Limit matching records and its cursor continues after the last record
// looked at. These tables are small (plans, API keys, one user's
// subscriptions), so a scan that skips many records stays cheap.

// PlanFilter narrows PlansWhere. Zero fields match everything.
type PlanFilter struct {
	Active     *bool         // on sale (true) or retired (false)
	NamePrefix string        // case-insensitive prefix of the name
	Protocol   model.KeyType // plans that include this protocol
}

func (f PlanFilter) match(p *model.Plan) bool {
	return (f.Active == nil || *f.Active == p.Active) &&
		(f.NamePrefix == "" || strings.HasPrefix(strings.ToLower(p.Name), strings.ToLower(f.NamePrefix))) &&
		(f.Protocol == "" || p.Allows(f.Protocol))
}

// PlansWhere lists the plans matching f, in id order.
func (s *Store) PlansWhere(f PlanFilter, p Page) ([]model.Plan, string, error) {
	return listTable(s, plans, p, f.match)
}

// API key states, as APIKeyFilter.State names them.
const (
	APIKeyActive  = "active"  // neither revoked nor expired at APIKeyFilter.At
	APIKeyRevoked = "revoked" // revoked (whether or not it has also expired)
	APIKeyExpired = "expired" // not revoked, but past its expiry at APIKeyFilter.At
)

// APIKeyFilter narrows APIKeysWhere. Zero fields match everything.
type APIKeyFilter struct {
	Scope model.Scope // keys that hold exactly this scope among theirs
	State string      // APIKeyActive, APIKeyRevoked or APIKeyExpired
	At    time.Time   // when expiry is judged (the store reads no clock)
}

func (f APIKeyFilter) match(k *model.APIKey) bool {
	if f.Scope != "" && !slices.Contains(k.Scopes, f.Scope) {
		return false
	}
	// The same test authentication applies: expired from ExpiresAt on.
	expired := !k.ExpiresAt.IsZero() && !f.At.Before(k.ExpiresAt)
	switch f.State {
	case APIKeyActive:
		return !k.Revoked && !expired
	case APIKeyRevoked:
		return k.Revoked
	case APIKeyExpired:
		return !k.Revoked && expired
	}
	return true
}

// APIKeysWhere lists the API keys matching f, in key id order. An unknown
// state is model.ErrInvalid.
func (s *Store) APIKeysWhere(f APIKeyFilter, p Page) ([]model.APIKey, string, error) {
	switch f.State {
	case "", APIKeyActive, APIKeyRevoked, APIKeyExpired:
	default:
		return nil, "", fmt.Errorf("API key state %q: %w", f.State, model.ErrInvalid)
	}
	return listTable(s, apiKeys, p, f.match)
}

// SubFilter narrows SubscriptionsWhere. Zero fields match everything.
type SubFilter struct {
	Status  model.SubStatus // the record's status
	Current *bool           // whether it grants its plan at At (Subscription.CurrentAt)
	At      time.Time
}

func (f SubFilter) match(s *model.Subscription) bool {
	return (f.Status == "" || f.Status == s.Status) && (f.Current == nil || *f.Current == s.CurrentAt(f.At))
}

// SubscriptionsWhere lists a user's subscriptions matching f, by expiry.
func (s *Store) SubscriptionsWhere(userID string, f SubFilter, p Page) ([]model.Subscription, string, error) {
	return listIndexWhere(s, subs, iSubsUser, userPrefix(userID), p, false, f.match)
}

// listIndexWhere is listIndex keeping only the records keep accepts (all
// when keep is nil).
func listIndexWhere[T any](s *Store, t *table[T], idx, prefix []byte, p Page, desc bool, keep func(*T) bool) ([]T, string, error) {
	return collect(s, idx, prefix, p, desc, func(v *view, k, _ []byte) (*T, error) {
		rec, err := getRec(v, t, k[bytes.LastIndexByte(k, sep)+1:])
		if err != nil {
			return nil, fmt.Errorf("%s entry %q: %w", idx, k, err)
		}
		return rec, nil
	}, keep)
}
