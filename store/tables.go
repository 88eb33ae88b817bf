package store

import (
	"fmt"
	"strconv"

	bolt "go.etcd.io/bbolt"

	"github.com/usipipo/usipipo/store/model"
)

// Bucket names. Record buckets hold JSON records by id; idx* buckets are the
// explicit indexes (DESIGN.md principle 4); tm* buckets are node-local
// telemetry.
var (
	bMeta      = []byte("meta")
	bUsers     = []byte("users")
	bUserKeys  = []byte("user_keys")
	bPlans     = []byte("plans")
	bSubs      = []byte("subscriptions")
	bKeys      = []byte("keys")
	bProxies   = []byte("proxies")
	bPayments  = []byte("payments")
	bCredits   = []byte("credits")
	bReferrals = []byte("referrals")
	bTickets   = []byte("tickets")
	bSettings  = []byte("settings")
	bAPIKeys   = []byte("api_keys")
	bAdmins    = []byte("admins")
	bAudit     = []byte("audit")
	bUsage     = []byte("usage") // credential|node → rx, tx, last seen (domain state, binary)

	iUsersTG        = []byte("idx_users_telegram")    // telegram id → user id
	iUsersRef       = []byte("idx_users_refcode")     // referral code → user id
	iUsersBlocked   = []byte("idx_users_blocked")     // banned or erased users
	iSubsUser       = []byte("idx_subs_user")         // user|expires|sub
	iKeysUserStatus = []byte("idx_keys_user_status")  // user|status|key
	iKeysActive     = []byte("idx_keys_active")       // user|key, status active
	iKeysExpiry     = []byte("idx_keys_expiry")       // expires|key, status active
	iKeysAddr       = []byte("idx_keys_addr")         // tunnel address → key, until revoked
	iKeysCap        = []byte("idx_keys_cap")          // key → cap, cap base: active keys cut at a cap
	iKeysDynamic    = []byte("idx_keys_dynamic")      // SHA-256 of an ssconf:// token (hex) → key
	iProxiesCap     = []byte("idx_proxies_cap")       // proxy → cap, cap base
	iProxiesActive  = []byte("idx_proxies_active")    // user|proxy, status active
	iProxiesUser    = []byte("idx_proxies_user")      // user|proxy
	iPaymentsUser   = []byte("idx_payments_user")     // user|created desc|payment
	iPaymentsCharge = []byte("idx_payments_charge")   // provider|charge → payment
	iCreditsUser    = []byte("idx_credits_user")      // user|entry
	iCreditsIdem    = []byte("idx_credits_idem")      // idempotency key → entry
	iReferrer       = []byte("idx_referrals_by")      // referrer|referred
	iTicketsStatus  = []byte("idx_tickets_status")    // status|ticket
	iTicketsUser    = []byte("idx_tickets_user")      // user|ticket
	iAuditUser      = []byte("idx_audit_user_action") // user|action|seq

	tmUsageHourly = []byte("tm_usage_hourly") // cred|hour → rx,tx
	tmUsageDaily  = []byte("tm_usage_daily")  // cred|day → rx,tx
	tmLastUsed    = []byte("tm_last_used")    // name → unix seconds
	tmConv        = []byte("tm_conversations")
	tmReceipts    = []byte("tm_receipts")
	tmState       = []byte("tm_state")           // collector checkpoints
	tmUpdates     = []byte("tm_updates")         // Telegram updates from receipt until processed
	tmAPIRefresh  = []byte("tm_api_refresh")     // REST API refresh families and token hashes
	tmAPIIdem     = []byte("tm_api_idempotency") // REST API responses by idempotency key (sealed)
	tmPanelSess   = []byte("tm_panel_sessions")  // web panel sessions by SHA-256 of the cookie
)

// tables lists every record table's index check, so CheckIndexes covers them all.
func tableChecks() []func(*bolt.Tx) error {
	return []func(*bolt.Tx) error{
		func(tx *bolt.Tx) error { return checkTable(tx, users) },
		func(tx *bolt.Tx) error { return checkTable(tx, plans) },
		func(tx *bolt.Tx) error { return checkTable(tx, subs) },
		func(tx *bolt.Tx) error { return checkTable(tx, keys) },
		func(tx *bolt.Tx) error { return checkTable(tx, proxies) },
		func(tx *bolt.Tx) error { return checkTable(tx, payments) },
		func(tx *bolt.Tx) error { return checkTable(tx, credits) },
		func(tx *bolt.Tx) error { return checkTable(tx, referrals) },
		func(tx *bolt.Tx) error { return checkTable(tx, tickets) },
		func(tx *bolt.Tx) error { return checkTable(tx, settings) },
		func(tx *bolt.Tx) error { return checkTable(tx, apiKeys) },
		func(tx *bolt.Tx) error { return checkTable(tx, admins) },
		func(tx *bolt.Tx) error { return checkTable(tx, audit) },
	}
}

func recordBuckets() [][]byte {
	return [][]byte{bMeta, bUsers, bUserKeys, bPlans, bSubs, bKeys, bProxies, bPayments, bCredits,
		bReferrals, bTickets, bSettings, bAPIKeys, bAdmins, bAudit, bUsage, bTrialGuard, bOnce}
}

func indexBuckets() [][]byte {
	return [][]byte{iUsersTG, iUsersRef, iUsersBlocked, iKeysCap, iProxiesCap, iSubsUser, iKeysUserStatus, iKeysActive, iKeysExpiry, iKeysAddr,
		iKeysDynamic, iProxiesActive, iProxiesUser, iPaymentsUser, iPaymentsCharge, iCreditsUser, iCreditsIdem,
		iReferrer, iTicketsStatus, iTicketsUser, iAuditUser}
}

func telemetryBuckets() [][]byte {
	return [][]byte{tmUsageHourly, tmUsageDaily, tmLastUsed, tmConv, tmReceipts, tmState, tmUpdates, tmAPIRefresh, tmAPIIdem, tmPanelSess}
}

func none() []kv { return nil }

var users = &table[model.User]{
	bucket:  bUsers,
	key:     func(u *model.User) []byte { return str(u.ID) },
	version: func(u *model.User) *uint64 { return &u.Version },
	indexes: []index[model.User]{
		{iUsersTG, func(u *model.User) []kv {
			if u.TelegramID == 0 {
				return none()
			}
			return []kv{{str(strconv.FormatInt(u.TelegramID, 10)), str(u.ID)}}
		}},
		{iUsersRef, func(u *model.User) []kv {
			if u.ReferralCode == "" {
				return none()
			}
			return []kv{{str(u.ReferralCode), str(u.ID)}}
		}},
		{iUsersBlocked, func(u *model.User) []kv {
			if !u.Banned && !u.Erased {
				return none()
			}
			return []kv{{str(u.ID), nil}}
		}},
	},
}

var plans = &table[model.Plan]{
	bucket:  bPlans,
	key:     func(p *model.Plan) []byte { return str(p.ID) },
	version: func(p *model.Plan) *uint64 { return &p.Version },
}

var subs = &table[model.Subscription]{
	bucket:  bSubs,
	key:     func(s *model.Subscription) []byte { return str(s.ID) },
	version: func(s *model.Subscription) *uint64 { return &s.Version },
	indexes: []index[model.Subscription]{
		{iSubsUser, func(s *model.Subscription) []kv {
			return []kv{{compose(str(s.UserID), ascTime(s.ExpiresAt), str(s.ID)), nil}}
		}},
	},
}

var keys = &table[model.Key]{
	bucket:  bKeys,
	key:     func(k *model.Key) []byte { return str(k.ID) },
	version: func(k *model.Key) *uint64 { return &k.Version },
	indexes: []index[model.Key]{
		{iKeysUserStatus, func(k *model.Key) []kv {
			return []kv{{compose(str(k.UserID), str(string(k.Status)), str(k.ID)), nil}}
		}},
		{iKeysActive, func(k *model.Key) []kv {
			if k.Status != model.KeyActive {
				return none()
			}
			return []kv{{compose(str(k.UserID), str(k.ID)), u64(k.Version)}}
		}},
		{iKeysCap, func(k *model.Key) []kv {
			return capEntry(k.ID, k.Status, k.Limits, k.CapBase)
		}},
		{iKeysExpiry, func(k *model.Key) []kv {
			if k.Status != model.KeyActive || k.Limits.ExpiresAt.IsZero() {
				return none()
			}
			return []kv{{compose(ascTime(k.Limits.ExpiresAt), str(k.ID)), nil}}
		}},
		{iKeysAddr, func(k *model.Key) []kv {
			if k.Status == model.KeyRevoked {
				return none()
			}
			var out []kv
			for _, a := range []string{k.AddrV4, k.AddrV6} {
				if a != "" {
					out = append(out, kv{str(a), str(k.ID)})
				}
			}
			return out
		}},
		// Kept for every status: a revoked key's URL answers with a refusal.
		{iKeysDynamic, func(k *model.Key) []kv {
			if k.DynHash == "" {
				return none()
			}
			return []kv{{str(k.DynHash), str(k.ID)}}
		}},
	},
	fill: func(v *view, k *model.Key) { k.Usage = v.usage(k.ID) },
}

var proxies = &table[model.Proxy]{
	bucket:  bProxies,
	key:     func(p *model.Proxy) []byte { return str(p.ID) },
	version: func(p *model.Proxy) *uint64 { return &p.Version },
	indexes: []index[model.Proxy]{
		{iProxiesActive, func(p *model.Proxy) []kv {
			if p.Status != model.KeyActive {
				return none()
			}
			return []kv{{compose(str(p.UserID), str(p.ID)), u64(p.Version)}}
		}},
		{iProxiesCap, func(p *model.Proxy) []kv {
			return capEntry(p.ID, p.Status, p.Limits, p.CapBase)
		}},
		{iProxiesUser, func(p *model.Proxy) []kv {
			return []kv{{compose(str(p.UserID), str(p.ID)), nil}}
		}},
	},
	fill: func(v *view, p *model.Proxy) { p.Usage = v.usage(p.ID) },
}

var payments = &table[model.Payment]{
	bucket:  bPayments,
	key:     func(p *model.Payment) []byte { return str(p.ID) },
	version: func(p *model.Payment) *uint64 { return &p.Version },
	indexes: []index[model.Payment]{
		{iPaymentsUser, func(p *model.Payment) []kv {
			return []kv{{compose(str(p.UserID), descTime(p.Created), str(p.ID)), nil}}
		}},
		{iPaymentsCharge, func(p *model.Payment) []kv {
			if p.ProviderChargeID == "" {
				return none()
			}
			return []kv{{chargeKey(p.Provider, p.ProviderChargeID), str(p.ID)}}
		}},
	},
}

func chargeKey(provider, charge string) []byte { return compose(str(provider), str(charge)) }

var credits = &table[model.CreditEntry]{
	bucket: bCredits,
	key:    func(e *model.CreditEntry) []byte { return str(e.ID) },
	indexes: []index[model.CreditEntry]{
		{iCreditsUser, func(e *model.CreditEntry) []kv {
			return []kv{{compose(str(e.UserID), str(e.ID)), nil}}
		}},
		{iCreditsIdem, func(e *model.CreditEntry) []kv {
			return []kv{{str(e.IdempotencyKey), str(e.ID)}}
		}},
	},
}

var referrals = &table[model.Referral]{
	bucket: bReferrals,
	key:    func(r *model.Referral) []byte { return str(r.ReferredID) },
	indexes: []index[model.Referral]{
		{iReferrer, func(r *model.Referral) []kv {
			return []kv{{compose(str(r.ReferrerID), str(r.ReferredID)), nil}}
		}},
	},
}

var tickets = &table[model.Ticket]{
	bucket:  bTickets,
	key:     func(t *model.Ticket) []byte { return str(t.ID) },
	version: func(t *model.Ticket) *uint64 { return &t.Version },
	indexes: []index[model.Ticket]{
		{iTicketsStatus, func(t *model.Ticket) []kv {
			return []kv{{compose(str(string(t.Status)), str(t.ID)), nil}}
		}},
		{iTicketsUser, func(t *model.Ticket) []kv {
			return []kv{{compose(str(t.UserID), str(t.ID)), nil}}
		}},
	},
}

var settings = &table[model.Setting]{
	bucket:  bSettings,
	key:     func(s *model.Setting) []byte { return str(s.Name) },
	version: func(s *model.Setting) *uint64 { return &s.Version },
}

var apiKeys = &table[model.APIKey]{
	bucket:  bAPIKeys,
	key:     func(k *model.APIKey) []byte { return str(k.ID) },
	version: func(k *model.APIKey) *uint64 { return &k.Version },
}

var admins = &table[model.Admin]{
	bucket:  bAdmins,
	key:     func(a *model.Admin) []byte { return str(a.Username) },
	version: func(a *model.Admin) *uint64 { return &a.Version },
}

var audit = &table[model.AuditEntry]{
	bucket: bAudit,
	key:    func(e *model.AuditEntry) []byte { return seqKey(e.Seq) },
	indexes: []index[model.AuditEntry]{
		{iAuditUser, func(e *model.AuditEntry) []kv {
			if e.UserID == "" {
				return none()
			}
			return []kv{{compose(str(e.UserID), str(e.Action), seqKey(e.Seq)), nil}}
		}},
	},
}

// seqKey is a sequence number as 16 hex digits: sortable, and free of the
// separator byte so it can end an index key.
func seqKey(n uint64) []byte { return []byte(fmt.Sprintf("%016x", n)) }

// capEntry indexes an active credential that its data cap cuts off (no
// throttle speed), so a usage batch finds the cap without decoding the
// record.
func capEntry(id string, st model.KeyStatus, l model.Limits, base uint64) []kv {
	if st != model.KeyActive || l.DataCap == 0 || l.ThrottleBps > 0 {
		return none()
	}
	return []kv{{str(id), append(u64(l.DataCap), u64(base)...)}}
}
