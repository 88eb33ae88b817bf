package pay

import (
	"errors"
	"fmt"
)

// Errors of the payment service. Domain refusals from the store come back as
// store/model's sentinels (ErrNotFound, ErrState, ErrExists, …), wrapped.
var (
	// ErrBadPayload: an invoice payload we did not issue (wrong form or
	// signature). Nothing is granted; the event is audited.
	ErrBadPayload = errors.New("invoice payload not issued by this node")
	// ErrMismatch: a provider reports a payment whose amount, currency, user,
	// status or reference differs from the pending record.
	ErrMismatch = errors.New("payment does not match its invoice")
	// ErrNotForSale: the product is not in the catalogue (or inactive).
	ErrNotForSale = errors.New("product not for sale")
	// ErrOpenInvoices: the user has too many unpaid invoices.
	ErrOpenInvoices = errors.New("too many open invoices")
	// ErrFirstPurchase: a trial-like product is sold only after a first paid purchase.
	ErrFirstPurchase = errors.New("available only after a first paid purchase")
	// ErrNoProvider: the provider is not configured on this node.
	ErrNoProvider = errors.New("payment provider not configured")
	// ErrPollerRunning: another poller already reads this bot token's updates.
	ErrPollerRunning = errors.New("a poller already runs for this bot token")
	// ErrClosed: the service or poller was closed.
	ErrClosed = errors.New("closed")
)

// APIError is a refusal from a provider's HTTP API. It never carries the
// credentials of the call (the bot token is in the URL path; QvaPay's secret
// in its query).
type APIError struct {
	Provider    string // "telegram", "qvapay"
	Method      string
	Status      int // HTTP status, or Telegram's error_code
	Description string
	RetryAfter  int // seconds, when the provider asks to slow down
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.Provider, e.Method, e.Status, e.Description)
}
