package notify

import "errors"

// Errors of the notifier. Invalid input to Broadcast is model.ErrInvalid,
// wrapped, like the rest of the service layer's refusals.
var (
	// ErrNoTelegram: the notifier has no bot token, so it cannot broadcast.
	ErrNoTelegram = errors.New("no Telegram bot configured")
	// ErrBroadcastOver: the broadcast already finished or was cancelled.
	ErrBroadcastOver = errors.New("broadcast already finished")
	// ErrNoSTARTTLS: the SMTP server does not offer STARTTLS; the notifier
	// never sends a password or a message in clear.
	ErrNoSTARTTLS = errors.New("SMTP server does not offer STARTTLS")
)
