package model

import (
	"encoding/json"
	"time"
)

// PaymentStatus is the state of a payment.
type PaymentStatus string

// Payment states.
const (
	PayPending  PaymentStatus = "pending"
	PayPaid     PaymentStatus = "paid"
	PayRefunded PaymentStatus = "refunded"
	PayFailed   PaymentStatus = "failed"
	PayExpired  PaymentStatus = "expired"
)

// Product names what a payment buys.
type Product struct {
	Kind   string `json:"kind"` // "plan", "data", "slots", "credits"
	RefID  string `json:"ref_id,omitempty"`
	Months int    `json:"months,omitempty"`
	Qty    int64  `json:"qty,omitempty"`
}

// Payment is one purchase through a provider. ProviderChargeID is unique per
// provider once set: the same charge can never be granted twice.
type Payment struct {
	ID               string        `json:"id"`
	Version          uint64        `json:"version"`
	UserID           string        `json:"user_id"`
	Provider         string        `json:"provider"` // "stars", "qvapay", "admin"
	ProviderChargeID string        `json:"provider_charge_id,omitempty"`
	Amount           int64         `json:"amount"` // Stars, or cents
	Currency         string        `json:"currency"`
	Status           PaymentStatus `json:"status"`
	Product          Product       `json:"product"`
	Payload          string        `json:"payload,omitempty"`
	Created          time.Time     `json:"created"`
	PaidAt           time.Time     `json:"paid_at,omitzero"`
	RefundedAt       time.Time     `json:"refunded_at,omitzero"`
}

// CreditEntry is one append-only movement of a user's credits. A balance is
// the sum of a user's entries; IdempotencyKey makes each movement happen once.
type CreditEntry struct {
	ID             string    `json:"id"`
	UserID         string    `json:"user_id"`
	Amount         int64     `json:"amount"`
	Reason         string    `json:"reason"`
	IdempotencyKey string    `json:"idempotency_key"`
	RefID          string    `json:"ref_id,omitempty"`
	Created        time.Time `json:"created"`
}

// Referral links a referred user to the user who invited them. Its credits
// vest only when the referred user first pays.
type Referral struct {
	ReferredID string    `json:"referred_id"`
	ReferrerID string    `json:"referrer_id"`
	Credits    int64     `json:"credits"`
	Vested     bool      `json:"vested,omitempty"`
	VestedBy   string    `json:"vested_by,omitempty"` // payment id
	Created    time.Time `json:"created"`
	VestedAt   time.Time `json:"vested_at,omitzero"`
}

// TicketStatus is the state of a support ticket.
type TicketStatus string

// Ticket states.
const (
	TicketOpen   TicketStatus = "open"
	TicketClosed TicketStatus = "closed"
)

// Ticket is a support conversation. Message texts are personal data, sealed
// under the user's key.
type Ticket struct {
	ID       string          `json:"id"`
	Version  uint64          `json:"version"`
	UserID   string          `json:"user_id"`
	Status   TicketStatus    `json:"status"`
	Subject  Sealed          `json:"subject"`
	Messages []TicketMessage `json:"messages"`
	Created  time.Time       `json:"created"`
	Updated  time.Time       `json:"updated"`
}

// TicketMessage is one message in a ticket.
type TicketMessage struct {
	From string    `json:"from"` // user id, or "admin:<id>"
	Text Sealed    `json:"text"`
	At   time.Time `json:"at"`
}

// Setting is one named configuration value held in the store (trial policy,
// referral reward, …) as JSON.
type Setting struct {
	Name    string    `json:"name"`
	Version uint64    `json:"version"`
	Value   []byte    `json:"value"`
	Updated time.Time `json:"updated"`
}

// Scope is what an API key may do.
type Scope string

// API key scopes.
const (
	ScopeRead  Scope = "read"
	ScopeWrite Scope = "write"
	ScopeAdmin Scope = "admin"
)

// APIKey is an integrator's credential. Only the SHA-256 of its secret is
// stored; the token is shown once when created.
type APIKey struct {
	ID        string    `json:"id"` // the public key id inside the token
	Version   uint64    `json:"version"`
	Name      string    `json:"name"`
	Scopes    []Scope   `json:"scopes"`
	Hash      []byte    `json:"hash"`
	Created   time.Time `json:"created"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	Revoked   bool      `json:"revoked,omitempty"`
}

// Admin is a panel and API login.
type Admin struct {
	Username     string    `json:"username"`
	Version      uint64    `json:"version"`
	PasswordHash string    `json:"password_hash"` // argon2id PHC string
	TOTP         Sealed    `json:"totp,omitempty"`
	Recovery     []string  `json:"recovery,omitempty"` // hex SHA-256 of each unused recovery code
	MustChange   bool      `json:"must_change,omitempty"`
	Created      time.Time `json:"created"`
	Updated      time.Time `json:"updated"`
}

// AuditEntry is one applied domain command with its secrets redacted.
type AuditEntry struct {
	Seq     uint64          `json:"seq"`
	At      time.Time       `json:"at"`
	Actor   string          `json:"actor"`
	UserID  string          `json:"user_id,omitempty"`
	Action  string          `json:"action"`
	Command json.RawMessage `json:"command"` // redacted JSON body
	Error   string          `json:"error,omitempty"`
}
