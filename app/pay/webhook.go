package pay

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
)

// WebhookSecretHeader carries the secret_token given to setWebhook on every
// webhook request Telegram makes.
const WebhookSecretHeader = "X-Telegram-Bot-Api-Secret-Token"

// AllowedUpdates are the update types payments and the bot need, asked for
// by getUpdates and by setWebhook alike. successful_payment and
// refunded_payment arrive as messages.
func AllowedUpdates() []string {
	return []string{"message", "edited_message", "callback_query", "inline_query", "pre_checkout_query", "my_chat_member"}
}

// CheckWebhookSecret accepts what setWebhook accepts as secret_token:
// 1 to 256 characters of A-Z, a-z, 0-9, '_' and '-'.
func CheckWebhookSecret(s string) error {
	if len(s) == 0 || len(s) > 256 {
		return fmt.Errorf("webhook secret: want 1 to 256 characters, got %d", len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("webhook secret: character %d is outside A-Z a-z 0-9 _ -", i)
		}
	}
	return nil
}

// Webhook is the intake for Telegram's webhook, used instead of a Poller,
// never with one. Each request must carry the secret; its update is
// persisted before the 200 that acknowledges it, and handled meanwhile on
// the same lanes as polled updates (one user's updates in order, one in
// flight per update_id). Run drives the lanes and resumes what is persisted but not
// processed: after a restart, or when its handling failed.
type Webhook struct {
	in     *Intake
	secret []byte

	mu sync.RWMutex // guards pl; held for reading while a request dispatches
	pl *pipeline    // nil while Run is not running: requests get 503
}

// NewWebhook returns the webhook intake for a secret_token (see
// CheckWebhookSecret).
func (in *Intake) NewWebhook(secret string) (*Webhook, error) {
	if err := CheckWebhookSecret(secret); err != nil {
		return nil, err
	}
	return &Webhook{in: in, secret: []byte(secret)}, nil
}

// resumeEvery is how often Run dispatches again what is still pending.
const resumeEvery = time.Second

// Run processes webhook updates until ctx ends, then waits for what it
// dispatched and returns ctx's error. Updates that arrive while it is not
// running are refused with 503, so Telegram delivers them again.
func (w *Webhook) Run(ctx context.Context) error {
	in := w.in
	if err := in.prune(); err != nil {
		in.log.Warn("update_receipts_prune", "service", "pay", "details", err.Error())
	}
	pl := in.startPipeline(ctx)
	w.mu.Lock()
	w.pl = pl
	w.mu.Unlock()
	t := time.NewTicker(resumeEvery)
	defer t.Stop()
	for {
		pending, err := in.Pending()
		if err != nil {
			in.log.Warn("update_resume", "service", "pay", "details", err.Error())
		}
		pl.dispatch(pending) // those in flight are skipped
		select {
		case <-ctx.Done():
			w.mu.Lock()
			w.pl = nil
			w.mu.Unlock()
			pl.stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Handler answers Telegram's webhook requests: 401 without the secret
// (nothing is read or stored), 503 while Run is not running or when the
// update cannot be persisted (Telegram delivers it again), 400 for a body
// that is not an update, else 200 once the update is persisted.
func (w *Webhook) Handler(c *fiber.Ctx) error {
	if subtle.ConstantTimeCompare([]byte(c.Get(WebhookSecretHeader)), w.secret) != 1 {
		return c.SendStatus(fiber.StatusUnauthorized)
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.pl == nil {
		return c.SendStatus(fiber.StatusServiceUnavailable)
	}
	u, err := DecodeUpdate(c.Body())
	if err != nil {
		w.in.log.Warn("webhook_undecodable", "service", "pay", "details", err.Error())
		return c.SendStatus(fiber.StatusBadRequest)
	}
	ups, err := w.in.admit([]json.RawMessage{u.Raw}) // u.Raw is a copy: fiber reuses the body
	if err == nil && !w.in.persistFirst {
		// Handled while it is fsynced (a crash before the fsync means no 200,
		// so Telegram delivers it again); concurrent requests share fsyncs.
		w.pl.dispatch(ups) // empty when already processed: a redelivery
	}
	if err == nil {
		err = w.in.persist(ups, 0)
	}
	if err != nil {
		w.in.log.Error("update_persist", "service", "pay", "details", err.Error())
		return c.SendStatus(fiber.StatusServiceUnavailable)
	}
	if w.in.persistFirst {
		w.pl.dispatch(ups)
	}
	return c.SendStatus(fiber.StatusOK)
}
