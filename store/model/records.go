package model

import "time"

// Sealed is an AES-256-GCM blob from store/keyring, bound to its record type
// and id. It marshals as base64 and is never logged in any other form.
type Sealed []byte

// Role is a user's privilege level.
type Role string

// Roles, from least to most privileged.
const (
	RoleUser       Role = "user"
	RoleAdmin      Role = "admin"
	RoleSuperadmin Role = "superadmin"
)

// RoleGrant gives a role until ExpiresAt (zero: no expiry).
type RoleGrant struct {
	Role      Role      `json:"role"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	GrantedBy string    `json:"granted_by,omitempty"`
}

// User is a customer known by Telegram id. Personal fields (names, username)
// are sealed under the user's own key, which erasure destroys.
type User struct {
	ID           string      `json:"id"`
	Version      uint64      `json:"version"`
	TelegramID   int64       `json:"telegram_id,omitempty"`
	Personal     Sealed      `json:"personal,omitempty"`
	Language     string      `json:"language"`
	Roles        []RoleGrant `json:"roles,omitempty"`
	Banned       bool        `json:"banned,omitempty"`
	BanReason    string      `json:"ban_reason,omitempty"`
	ReferralCode string      `json:"referral_code"`
	ReferredBy   string      `json:"referred_by,omitempty"`
	ExtraSlots   int         `json:"extra_slots,omitempty"`
	TrialsUsed   []KeyType   `json:"trials_used,omitempty"`
	Erased       bool        `json:"erased,omitempty"`
	Created      time.Time   `json:"created"`
	Updated      time.Time   `json:"updated"`
}

// Personal is the clear form of User.Personal.
type Personal struct {
	Username  string `json:"username,omitempty"`
	FirstName string `json:"first_name,omitempty"`
	LastName  string `json:"last_name,omitempty"`
	Email     string `json:"email,omitempty"`
}

// RoleAt is the highest role the user holds at time t.
func (u *User) RoleAt(t time.Time) Role {
	best := RoleUser
	for _, g := range u.Roles {
		if !g.ExpiresAt.IsZero() && !t.Before(g.ExpiresAt) {
			continue
		}
		if rank(g.Role) > rank(best) {
			best = g.Role
		}
	}
	return best
}

func rank(r Role) int {
	switch r {
	case RoleSuperadmin:
		return 2
	case RoleAdmin:
		return 1
	}
	return 0
}

// KeyType is the protocol of a credential.
type KeyType string

// Key types. MTProto secrets live in their own records (Proxy) but share the
// type name so plans and trials can name them.
const (
	WireGuard KeyType = "wireguard"
	Outline   KeyType = "outline"
	MTProto   KeyType = "mtproto"
)

// Valid reports whether t is a known protocol.
func (t KeyType) Valid() bool { return t == WireGuard || t == Outline || t == MTProto }

// Plan is a product a user can buy: limits applied to the keys it grants.
type Plan struct {
	ID            string    `json:"id"`
	Version       uint64    `json:"version"`
	Name          string    `json:"name"`
	DurationDays  int       `json:"duration_days"`
	DataCapBytes  uint64    `json:"data_cap_bytes,omitempty"`
	SpeedBps      uint64    `json:"speed_bps,omitempty"`
	ThrottleBps   uint64    `json:"throttle_bps,omitempty"`
	MaxKeys       int       `json:"max_keys"`
	MaxConns      int       `json:"max_conns,omitempty"`
	Protocols     []KeyType `json:"protocols"`
	PriceStars    int64     `json:"price_stars"`
	PriceUSDCents int64     `json:"price_usd_cents"`
	Active        bool      `json:"active"`
	Created       time.Time `json:"created"`
}

// Allows reports whether the plan includes protocol t.
func (p *Plan) Allows(t KeyType) bool {
	for _, x := range p.Protocols {
		if x == t {
			return true
		}
	}
	return false
}

// SubStatus is the state of a subscription.
type SubStatus string

// Subscription states.
const (
	SubActive    SubStatus = "active"
	SubCancelled SubStatus = "cancelled"
)

// Subscription is a user's plan from Start until ExpiresAt. Expiry is a time,
// not a write: a subscription is current while now < ExpiresAt.
type Subscription struct {
	ID        string    `json:"id"`
	Version   uint64    `json:"version"`
	UserID    string    `json:"user_id"`
	PlanID    string    `json:"plan_id"`
	Status    SubStatus `json:"status"`
	Start     time.Time `json:"start"`
	ExpiresAt time.Time `json:"expires_at"`
	Source    string    `json:"source"` // payment id, "trial", "admin:<id>"
	Created   time.Time `json:"created"`
}

// CurrentAt reports whether the subscription grants its plan at t.
func (s *Subscription) CurrentAt(t time.Time) bool {
	return s.Status == SubActive && !t.Before(s.Start) && t.Before(s.ExpiresAt)
}

// KeyStatus is the state of a VPN key or MTProto secret.
type KeyStatus string

// Key states. Expired is recorded by the expiry sweep after the data planes
// have already stopped serving the key at ExpiresAt.
const (
	KeyActive    KeyStatus = "active"
	KeySuspended KeyStatus = "suspended"
	KeyRevoked   KeyStatus = "revoked"
	KeyExpired   KeyStatus = "expired"
)

// Valid reports whether s is a known key status.
func (s KeyStatus) Valid() bool {
	return s == KeyActive || s == KeySuspended || s == KeyRevoked || s == KeyExpired
}

// Limits are what a data plane enforces for a credential by itself.
type Limits struct {
	ExpiresAt   time.Time `json:"expires_at,omitzero"`
	DataCap     uint64    `json:"data_cap,omitempty"` // bytes, 0 = none
	SpeedBps    uint64    `json:"speed_bps,omitempty"`
	ThrottleBps uint64    `json:"throttle_bps,omitempty"` // speed after the cap; 0 = cut off
	MaxConns    int       `json:"max_conns,omitempty"`
}

// Usage counts bytes per node. Each node's counter only ever grows by the
// deltas it recorded, so nodes add up without double counting. The store
// keeps it in its own bucket, not in the credential's record, so usage
// never changes a record's version (and never invalidates what is cached
// from it); reads fill it in.
type Usage map[string]Counter

// Counter is one node's totals for a credential.
type Counter struct {
	Rx       uint64    `json:"rx"`
	Tx       uint64    `json:"tx"`
	LastSeen time.Time `json:"last_seen,omitzero"`
}

// Total is the sum over nodes of received and sent bytes.
func (u Usage) Total() uint64 {
	var n uint64
	for _, c := range u {
		n += c.Rx + c.Tx
	}
	return n
}

// Key is a WireGuard or Outline credential owned by a user.
type Key struct {
	ID      string    `json:"id"`
	Version uint64    `json:"version"`
	UserID  string    `json:"user_id"`
	Type    KeyType   `json:"type"`
	Node    string    `json:"node"`
	Name    string    `json:"name"`
	Status  KeyStatus `json:"status"`
	Reason  string    `json:"reason,omitempty"`
	Trial   bool      `json:"trial,omitempty"`
	SubID   string    `json:"sub_id,omitempty"`
	Limits  Limits    `json:"limits"`
	Secret  Sealed    `json:"secret,omitempty"` // WireGuard private key + PSK, or Outline password
	Public  string    `json:"public,omitempty"` // WireGuard public key: not secret, needed to install a peer
	AddrV4  string    `json:"addr_v4,omitempty"`
	AddrV6  string    `json:"addr_v6,omitempty"`
	// Dynamic is an Outline key's sealed ssconf:// token and DynHash the
	// hex SHA-256 of the token, by which the public listener finds the key.
	// Both survive a rotation.
	Dynamic Sealed    `json:"dynamic,omitempty"`
	DynHash string    `json:"dyn_hash,omitempty"`
	Usage   Usage     `json:"-"`
	CapBase uint64    `json:"cap_base,omitempty"` // usage total when the current period began
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// PeriodUsage is what the key has used since its current period began: the
// amount its data cap applies to.
func (k *Key) PeriodUsage() uint64 { return sat(k.Usage.Total(), k.CapBase) }

// PeriodUsage is what the proxy has used since its current period began.
func (p *Proxy) PeriodUsage() uint64 { return sat(p.Usage.Total(), p.CapBase) }

func sat(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
}

// Proxy is a user's MTProto secret.
type Proxy struct {
	ID      string    `json:"id"`
	Version uint64    `json:"version"`
	UserID  string    `json:"user_id"`
	Node    string    `json:"node"`
	Status  KeyStatus `json:"status"`
	Reason  string    `json:"reason,omitempty"`
	Limits  Limits    `json:"limits"`
	Secret  Sealed    `json:"secret,omitempty"`
	Usage   Usage     `json:"-"`
	CapBase uint64    `json:"cap_base,omitempty"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}
