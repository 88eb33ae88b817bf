package model

import "errors"

// Domain errors. The store returns them (wrapped) when a command fails an
// invariant inside the write transaction; the service layer returns them for
// policy decisions; adapters (bot, API, CLI, panel) render them with
// errors.Is. Their text is shown to users, so it never carries a secret.
var (
	ErrNotFound      = errors.New("not found")
	ErrExists        = errors.New("already exists")
	ErrInvalid       = errors.New("invalid input")
	ErrQuota         = errors.New("key quota reached")
	ErrTrialUsed     = errors.New("free trial already used")
	ErrTrialDisabled = errors.New("free trial not available")
	ErrBanned        = errors.New("user is banned")
	ErrErased        = errors.New("user was erased")
	ErrConflict      = errors.New("record changed concurrently")
	ErrState         = errors.New("not allowed in the current state")
	ErrBalance       = errors.New("insufficient credits")
	ErrForbidden     = errors.New("not allowed for this role")
	ErrProtocol      = errors.New("protocol not included in the plan")
	ErrUnknownCmd    = errors.New("unknown command type")
)
