package store

import (
	"bytes"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/usipipo/usipipo/store/model"
)

// Queries open their own read transaction; bbolt readers never block the
// writer or each other.

func (s *Store) read(fn func(v *view) error) error {
	return s.db.View(func(tx *bolt.Tx) error { return fn(&view{tx: tx}) })
}

func getOne[T any](s *Store, t *table[T], id string) (*T, error) {
	var out *T
	err := s.read(func(v *view) error {
		var err error
		out, err = getByID(v, t, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", t.bucket, id, err)
	}
	return out, nil
}

// listTable pages over a record bucket in id order.
func listTable[T any](s *Store, t *table[T], p Page, keep func(*T) bool) ([]T, string, error) {
	return collect(s, t.bucket, nil, p, false, func(v *view, _, b []byte) (*T, error) { return load(v, t, b) }, keep)
}

// collect pages over bucket (under prefix, backwards if desc), turning each
// entry into its record with rec and keeping those keep accepts (all when
// keep is nil).
func collect[T any](s *Store, bucket, prefix []byte, p Page, desc bool, rec func(v *view, k, b []byte) (*T, error), keep func(*T) bool) ([]T, string, error) {
	var out []T
	var next string
	err := s.read(func(v *view) error {
		var err error
		next, err = scan(v.bucket(bucket), prefix, p, desc, func(k, b []byte) (bool, error) {
			r, err := rec(v, k, b)
			if err != nil {
				return false, err
			}
			if keep != nil && !keep(r) {
				return false, nil
			}
			out = append(out, *r)
			return true, nil
		})
		return err
	})
	return out, next, err
}

// listIndex pages over an index bucket under prefix, resolving each entry's
// last key part to its record.
func listIndex[T any](s *Store, t *table[T], idx, prefix []byte, p Page, desc bool) ([]T, string, error) {
	return listIndexWhere(s, t, idx, prefix, p, desc, nil)
}

// User returns a user by id.
func (s *Store) User(id string) (*model.User, error) { return getOne(s, users, id) }

// UserByTelegram returns the user with a Telegram id.
func (s *Store) UserByTelegram(tg int64) (*model.User, error) {
	var out *model.User
	err := s.read(func(v *view) error {
		var err error
		out, err = lookup(v, users, iUsersTG, tgKey(tg))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("telegram user %d: %w", tg, err)
	}
	return out, nil
}

// UserByReferralCode returns the user who owns a referral code.
func (s *Store) UserByReferralCode(code string) (*model.User, error) {
	var out *model.User
	err := s.read(func(v *view) error {
		var err error
		out, err = lookup(v, users, iUsersRef, str(code))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("referral code: %w", err)
	}
	return out, nil
}

// UserKey returns a user's sealed personal-data key; ErrNotFound once erased.
func (s *Store) UserKey(id string) (model.Sealed, error) {
	var out model.Sealed
	err := s.read(func(v *view) error {
		b := v.bucket(bUserKeys).Get(str(id))
		if b == nil {
			return model.ErrNotFound
		}
		out = append(model.Sealed(nil), b...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("key of user %s: %w", id, err)
	}
	return out, nil
}

// Users lists users in id (creation) order.
func (s *Store) Users(p Page) ([]model.User, string, error) { return listTable(s, users, p, nil) }

// Plan returns a plan.
func (s *Store) Plan(id string) (*model.Plan, error) { return getOne(s, plans, id) }

// Plans lists plans.
func (s *Store) Plans(p Page) ([]model.Plan, string, error) { return listTable(s, plans, p, nil) }

// Subscriptions lists a user's subscriptions by expiry.
func (s *Store) Subscriptions(userID string, p Page) ([]model.Subscription, string, error) {
	return listIndex(s, subs, iSubsUser, userPrefix(userID), p, false)
}

// CurrentPlan returns the subscription current at t that expires last, and
// its plan; model.ErrQuota wrapped when there is none.
func (s *Store) CurrentPlan(userID string, at time.Time) (*model.Subscription, *model.Plan, error) {
	var sub *model.Subscription
	var plan *model.Plan
	err := s.read(func(v *view) error {
		var err error
		sub, plan, err = currentPlan(v, userID, Meta{At: at})
		return err
	})
	return sub, plan, err
}

// Key returns a key.
func (s *Store) Key(id string) (*model.Key, error) { return getOne(s, keys, id) }

// KeyByDynamicHash returns the key whose ssconf:// token hashes to hash
// (hex SHA-256): one index read.
func (s *Store) KeyByDynamicHash(hash string) (*model.Key, error) {
	var out *model.Key
	err := s.read(func(v *view) error {
		var err error
		out, err = lookup(v, keys, iKeysDynamic, str(hash))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dynamic key: %w", err)
	}
	return out, nil
}

// KeyFilter narrows Keys. Status needs UserID (the index is user, status).
type KeyFilter struct {
	UserID string
	Status model.KeyStatus
}

// Keys lists keys: a user's (by status, then id) through the index, or all
// keys in id order.
func (s *Store) Keys(f KeyFilter, p Page) ([]model.Key, string, error) {
	switch {
	case f.UserID != "" && f.Status != "":
		return listIndex(s, keys, iKeysUserStatus, compose(str(f.UserID), str(string(f.Status)), nil), p, false)
	case f.UserID != "":
		return listIndex(s, keys, iKeysUserStatus, userPrefix(f.UserID), p, false)
	case f.Status != "":
		return listTable(s, keys, p, func(k *model.Key) bool { return k.Status == f.Status })
	}
	return listTable(s, keys, p, nil)
}

// EachActiveKey calls fn for every active key, in (user, id) order, inside
// one read transaction: the reconcile loop's desired set.
func (s *Store) EachActiveKey(fn func(*model.Key) error) error {
	return s.read(func(v *view) error {
		return v.bucket(iKeysActive).ForEach(func(k, _ []byte) error {
			rec, err := getRec(v, keys, k[bytes.LastIndexByte(k, sep)+1:])
			if err != nil {
				return err
			}
			return fn(rec)
		})
	})
}

// EachActiveProxy calls fn for every active MTProto secret.
func (s *Store) EachActiveProxy(fn func(*model.Proxy) error) error {
	return s.read(func(v *view) error {
		return v.bucket(iProxiesActive).ForEach(func(k, _ []byte) error {
			rec, err := getRec(v, proxies, k[bytes.LastIndexByte(k, sep)+1:])
			if err != nil {
				return err
			}
			return fn(rec)
		})
	})
}

// KeysExpiredAt returns the ids of active keys whose expiry is at or before t.
func (s *Store) KeysExpiredAt(t time.Time, limit int) ([]string, error) {
	var out []string
	err := s.read(func(v *view) error {
		c := v.bucket(iKeysExpiry).Cursor()
		end := ascTime(t)
		for k, _ := c.First(); k != nil && len(out) < limit; k, _ = c.Next() {
			if bytes.Compare(k[:8], end) > 0 {
				break
			}
			out = append(out, string(k[9:]))
		}
		return nil
	})
	return out, err
}

// Proxy returns an MTProto secret record.
func (s *Store) Proxy(id string) (*model.Proxy, error) { return getOne(s, proxies, id) }

// Proxies lists a user's MTProto secrets, or all when userID is "".
func (s *Store) Proxies(userID string, p Page) ([]model.Proxy, string, error) {
	if userID == "" {
		return listTable(s, proxies, p, nil)
	}
	return listIndex(s, proxies, iProxiesUser, userPrefix(userID), p, false)
}

// Payment returns a payment.
func (s *Store) Payment(id string) (*model.Payment, error) { return getOne(s, payments, id) }

// PaymentByCharge returns the payment a provider charge settled.
func (s *Store) PaymentByCharge(provider, charge string) (*model.Payment, error) {
	var out *model.Payment
	err := s.read(func(v *view) error {
		var err error
		out, err = lookup(v, payments, iPaymentsCharge, chargeKey(provider, charge))
		return err
	})
	return out, err
}

// Payments lists a user's payments newest first, or all payments in id order.
func (s *Store) Payments(userID string, p Page) ([]model.Payment, string, error) {
	if userID == "" {
		return listTable(s, payments, p, nil)
	}
	return listIndex(s, payments, iPaymentsUser, userPrefix(userID), p, false)
}

// Balance is the sum of a user's ledger entries.
func (s *Store) Balance(userID string) (int64, error) {
	var out int64
	err := s.read(func(v *view) error {
		var err error
		out, err = balance(v, userID)
		return err
	})
	return out, err
}

// Credits lists a user's ledger entries oldest first.
func (s *Store) Credits(userID string, p Page) ([]model.CreditEntry, string, error) {
	return listIndex(s, credits, iCreditsUser, userPrefix(userID), p, false)
}

// Referral returns the referral of a referred user.
func (s *Store) Referral(referredID string) (*model.Referral, error) {
	return getOne(s, referrals, referredID)
}

// Referrals lists the users a referrer invited.
func (s *Store) Referrals(referrerID string, p Page) ([]model.Referral, string, error) {
	return listIndex(s, referrals, iReferrer, userPrefix(referrerID), p, false)
}

// Ticket returns a ticket.
func (s *Store) Ticket(id string) (*model.Ticket, error) { return getOne(s, tickets, id) }

// Tickets lists tickets with a status, or a user's tickets.
func (s *Store) Tickets(status model.TicketStatus, userID string, p Page) ([]model.Ticket, string, error) {
	if userID != "" {
		return listIndex(s, tickets, iTicketsUser, userPrefix(userID), p, false)
	}
	return listIndex(s, tickets, iTicketsStatus, compose(str(string(status)), nil), p, false)
}

// Setting returns a setting; model.ErrNotFound when unset.
func (s *Store) Setting(name string) (*model.Setting, error) { return getOne(s, settings, name) }

// APIKey returns an API key record by its key id.
func (s *Store) APIKey(id string) (*model.APIKey, error) { return getOne(s, apiKeys, id) }

// APIKeys lists API keys.
func (s *Store) APIKeys(p Page) ([]model.APIKey, string, error) { return listTable(s, apiKeys, p, nil) }

// Admin returns a panel login.
func (s *Store) Admin(name string) (*model.Admin, error) { return getOne(s, admins, name) }

// AuditFilter narrows Audit. Action needs UserID (the index is user, action).
type AuditFilter struct {
	UserID string
	Action string
}

// Audit lists audit entries newest first, optionally a user's (and one action).
func (s *Store) Audit(f AuditFilter, p Page) ([]model.AuditEntry, string, error) {
	switch {
	case f.UserID != "" && f.Action != "":
		return listIndex(s, audit, iAuditUser, compose(str(f.UserID), str(f.Action), nil), p, true)
	case f.UserID != "":
		return listIndex(s, audit, iAuditUser, userPrefix(f.UserID), p, true)
	}
	return collect(s, bAudit, nil, p, true, func(_ *view, _, b []byte) (*model.AuditEntry, error) {
		var e model.AuditEntry
		if err := decode(b, &e); err != nil {
			return nil, err
		}
		return &e, nil
	}, nil)
}

// AddressInUse reports whether a tunnel address belongs to a key that is not
// revoked.
func (s *Store) AddressInUse(addr string) bool {
	inUse := false
	_ = s.read(func(v *view) error {
		inUse = v.bucket(iKeysAddr).Get(str(addr)) != nil
		return nil
	})
	return inUse
}

// EachActiveVersion calls fn for every active key (or, with proxies, every
// active MTProto secret) with its user and record version, from the index
// alone: the reconcile loop decodes only records whose version it has not
// seen.
func (s *Store) EachActiveVersion(proxies bool, fn func(userID, id string, version uint64) error) error {
	idx := iKeysActive
	if proxies {
		idx = iProxiesActive
	}
	return s.read(func(v *view) error {
		return v.bucket(idx).ForEach(func(k, val []byte) error {
			i := bytes.IndexByte(k, sep)
			return fn(string(k[:i]), string(k[i+1:]), decodeU64(val))
		})
	})
}

// BlockedUsers returns the ids of banned and erased users.
func (s *Store) BlockedUsers() (map[string]bool, error) {
	out := map[string]bool{}
	err := s.read(func(v *view) error {
		return v.bucket(iUsersBlocked).ForEach(func(k, _ []byte) error {
			out[string(k)] = true
			return nil
		})
	})
	return out, err
}

// Usage returns a credential's counters per node.
func (s *Store) Usage(id string) (model.Usage, error) {
	var out model.Usage
	err := s.read(func(v *view) error {
		out = v.usage(id)
		return nil
	})
	return out, err
}

// OldestAudit returns the time of the oldest audit entry; false when the
// trail is empty.
func (s *Store) OldestAudit() (time.Time, bool, error) {
	var at time.Time
	found := false
	err := s.read(func(v *view) error {
		_, b := v.bucket(bAudit).Cursor().First()
		if b == nil {
			return nil
		}
		e, err := load(v, audit, b)
		if err != nil {
			return err
		}
		at, found = e.At, true
		return nil
	})
	return at, found, err
}
