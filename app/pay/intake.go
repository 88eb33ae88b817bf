package pay

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/usipipo/usipipo/store"
)

// Keys of the Updates telemetry.
const (
	updPending = "u/" // u/<update id> → the update's JSON, until processed
	updDone    = "d/" // d/<update id> → receipt of a processed update
	updDead    = "x/" // x/<update id> → JSON of an update given up on
	updOffset  = "offset"

	keepReceipts = 10000 // receipts kept below the newest (older ids are never delivered again)
	maxAttempts  = 8     // then an update is moved to the dead letters
)

func updKey(prefix string, id int64) string { return fmt.Sprintf("%s%020d", prefix, id) }

// Intake persists Telegram updates before they are acknowledged and
// processes each once by update_id. The Poller and the webhook feed it.
type Intake struct {
	st      *store.Store
	h       Handler
	workers int
	log     *slog.Logger

	mu       sync.Mutex     // guards attempts
	attempts map[int64]int  // failures of pending updates in this process
	wg       sync.WaitGroup // webhook processing in flight
}

// NewIntake returns an intake that persists in st and hands updates to h
// (normally the payment Service, which passes non-payment updates on).
func NewIntake(st *store.Store, h Handler, workers int, log *slog.Logger) *Intake {
	if workers <= 0 {
		workers = 16
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Intake{st: st, h: h, workers: workers, log: log, attempts: map[int64]int{}}
}

// Persist stores updates not yet processed, and the offset that confirms
// them, in one fsynced transaction. Only after it returns may Telegram be
// told (by the next getUpdates offset, or the webhook's 200) that they
// arrived. It returns the updates to process.
func (in *Intake) Persist(raws []json.RawMessage, nextOffset int64) ([]*Update, error) {
	vals := map[string][]byte{}
	var out []*Update
	for _, raw := range raws {
		u, err := DecodeUpdate(raw)
		if err != nil {
			in.log.Warn("update_undecodable", "service", "pay", "details", err.Error())
			continue
		}
		done, err := in.st.GetTelemetry(store.Updates, updKey(updDone, u.ID))
		if err != nil {
			return nil, err
		}
		if done != nil {
			continue // delivered again; already processed
		}
		vals[updKey(updPending, u.ID)] = u.Raw
		out = append(out, u)
	}
	if nextOffset > 0 {
		vals[updOffset] = strconv.AppendInt(nil, nextOffset, 10)
	}
	if len(vals) == 0 {
		return nil, nil
	}
	if err := in.st.PutTelemetry(store.Updates, vals); err != nil {
		return nil, fmt.Errorf("persisting updates: %w", err)
	}
	return out, nil
}

// Pending returns the persisted updates not yet processed, in update order.
func (in *Intake) Pending() ([]*Update, error) {
	var out []*Update
	err := in.st.ScanTelemetry(store.Updates, updPending, func(_, v []byte) bool {
		if u, err := DecodeUpdate(v); err == nil {
			out = append(out, u)
		}
		return true
	})
	return out, err
}

// Process handles updates concurrently — those of one user in order, on one
// worker — and receipts those handled in one write. Updates whose handler
// failed stay pending; it returns how many did.
func (in *Intake) Process(ctx context.Context, ups []*Update) (failed int, err error) {
	if len(ups) == 0 {
		return 0, nil
	}
	slices.SortFunc(ups, func(a, b *Update) int { return int(a.ID - b.ID) })
	lanes := make([][]*Update, min(in.workers, len(ups)))
	for _, u := range ups {
		l := int(uint64(shardOf(u)) % uint64(len(lanes)))
		lanes[l] = append(lanes[l], u)
	}
	var mu sync.Mutex
	vals := map[string][]byte{}
	var wg sync.WaitGroup
	for _, lane := range lanes {
		wg.Go(func() {
			for _, u := range lane {
				herr := in.handle(ctx, u)
				mu.Lock()
				switch {
				case herr == nil:
					vals[updKey(updPending, u.ID)] = nil
					vals[updKey(updDone, u.ID)] = []byte{1}
				case in.giveUp(u.ID):
					in.log.Error("update_dead_letter", "service", "pay", "action", "update", "details", herr.Error())
					vals[updKey(updPending, u.ID)] = nil
					vals[updKey(updDone, u.ID)] = []byte{0}
					vals[updKey(updDead, u.ID)] = u.Raw
				default:
					in.log.Warn("update_retry", "service", "pay", "details", herr.Error())
					failed++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(vals) == 0 {
		return failed, nil
	}
	if err := in.st.PutTelemetry(store.Updates, vals); err != nil {
		return failed, fmt.Errorf("receipting updates: %w", err)
	}
	return failed, nil
}

func (in *Intake) handle(ctx context.Context, u *Update) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panic: %v", r)
		}
	}()
	hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return in.h.HandleUpdate(hctx, u)
}

func (in *Intake) giveUp(id int64) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.attempts[id]++
	n := in.attempts[id]
	if n >= maxAttempts {
		delete(in.attempts, id)
		return true
	}
	return false
}

// shardOf is the user an update comes from (0 when none), so one user's
// updates are handled in order.
func shardOf(u *Update) int64 {
	switch {
	case u.PreCheckoutQuery != nil:
		return u.PreCheckoutQuery.From.ID
	case u.Message != nil && u.Message.From != nil:
		return u.Message.From.ID
	case u.Message != nil:
		return u.Message.Chat.ID
	}
	var g struct {
		CallbackQuery *struct {
			From User `json:"from"`
		} `json:"callback_query"`
		EditedMessage *Message `json:"edited_message"`
	}
	if json.Unmarshal(u.Raw, &g) == nil {
		if g.CallbackQuery != nil {
			return g.CallbackQuery.From.ID
		}
		if g.EditedMessage != nil {
			return g.EditedMessage.Chat.ID
		}
	}
	return 0
}

// offset returns the persisted next getUpdates offset (0: none yet).
func (in *Intake) offset() (int64, error) {
	b, err := in.st.GetTelemetry(store.Updates, updOffset)
	if err != nil || b == nil {
		return 0, err
	}
	return strconv.ParseInt(string(b), 10, 64)
}

// prune drops receipts far below the newest: Telegram never delivers
// update ids below a confirmed offset again.
func (in *Intake) prune() error {
	var ids []int64
	err := in.st.ScanTelemetry(store.Updates, updDone, func(k, _ []byte) bool {
		if id, err := strconv.ParseInt(string(k[len(updDone):]), 10, 64); err == nil {
			ids = append(ids, id)
		}
		return true
	})
	if err != nil || len(ids) <= keepReceipts {
		return err
	}
	del := map[string][]byte{}
	for _, id := range ids[:len(ids)-keepReceipts] {
		del[updKey(updDone, id)] = nil
	}
	return in.st.PutTelemetry(store.Updates, del)
}

// Webhook is the intake for Telegram's webhook on the public listener: the
// X-Telegram-Bot-Api-Secret-Token header must equal secret (set with
// setWebhook); the update is persisted before the 200 that acknowledges it,
// then processed. Use it instead of a Poller, never with one.
func (in *Intake) Webhook(ctx context.Context, secret string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		got := c.Get("X-Telegram-Bot-Api-Secret-Token")
		if secret == "" || subtle.ConstantTimeCompare([]byte(got), []byte(secret)) != 1 {
			return c.SendStatus(fiber.StatusUnauthorized)
		}
		raw := append(json.RawMessage(nil), c.Body()...)
		ups, err := in.Persist([]json.RawMessage{raw}, 0)
		if err != nil {
			return c.SendStatus(fiber.StatusServiceUnavailable) // Telegram retries
		}
		in.wg.Go(func() {
			if _, err := in.Process(ctx, ups); err != nil {
				in.log.Warn("webhook_process", "service", "pay", "details", err.Error())
			}
		})
		return c.SendStatus(fiber.StatusOK)
	}
}

// Wait waits for webhook processing in flight.
func (in *Intake) Wait() { in.wg.Wait() }
