package pay

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

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
// processes each once by update_id. The Poller or the Webhook feeds it.
type Intake struct {
	st      *store.Store
	h       Handler
	workers int
	log     *slog.Logger

	w            *updWriter
	persistFirst bool

	mu       sync.Mutex    // guards attempts
	attempts map[int64]int // failures of pending updates in this process
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
	return &Intake{st: st, h: h, workers: workers, log: log, w: newUpdWriter(st), attempts: map[int64]int{}}
}

// PersistFirst makes the intake hand an update to its handler only once
// the update is persisted, instead of while it is being persisted. Either
// way Telegram is told an update arrived only after it is persisted, and a
// handler may see an update again after a crash; this is the old order,
// one fsync slower per update, kept as the benchmarks' baseline. Call it
// before Run.
func (in *Intake) PersistFirst() { in.persistFirst = true }

// Persist stores updates not yet processed, and the offset that confirms
// them, in one fsynced transaction (shared with concurrent callers). Only
// after it returns may Telegram be told (by the next getUpdates offset, or
// the webhook's 200) that they arrived. It returns the updates to process.
func (in *Intake) Persist(raws []json.RawMessage, nextOffset int64) ([]*Update, error) {
	ups, err := in.admit(raws)
	if err != nil {
		return nil, err
	}
	if err := in.persist(ups, nextOffset); err != nil {
		return nil, err
	}
	return ups, nil
}

// admit decodes updates and drops those already processed.
func (in *Intake) admit(raws []json.RawMessage) ([]*Update, error) {
	var out []*Update
	for _, raw := range raws {
		u, err := DecodeUpdate(raw)
		if err != nil {
			in.log.Warn("update_undecodable", "service", "pay", "details", err.Error())
			continue
		}
		out = append(out, u)
	}
	if len(out) == 0 {
		return nil, nil
	}
	fresh := out[:0]
	err := in.st.ViewTelemetry(store.Updates, func(tx store.TelemetryTx) error {
		for _, u := range out {
			if !tx.Has(updKey(updDone, u.ID)) { // else delivered again: already processed
				fresh = append(fresh, u)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("checking update receipts: %w", err)
	}
	return fresh, nil
}

// persist makes ups pending on disk with the offset (0: none).
func (in *Intake) persist(ups []*Update, nextOffset int64) error {
	if len(ups) == 0 && nextOffset <= 0 {
		return nil
	}
	if err := in.w.persist(ups, nextOffset); err != nil {
		return fmt.Errorf("persisting updates: %w", err)
	}
	return nil
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

func (in *Intake) handle(ctx context.Context, u *Update) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panic: %v", r)
		}
	}()
	hctx, cancel := context.WithTimeout(context.WithValue(ctx, updateIDKey{}, u.ID), 30*time.Second)
	defer cancel()
	return in.h.HandleUpdate(hctx, u)
}

type updateIDKey struct{}

// UpdateID returns the update_id of the update being handled with ctx.
// The intake may hand an update again after a crash (before its persist or
// its receipt was fsynced), so a handler with side effects that are not
// idempotent otherwise can key them by it.
func UpdateID(ctx context.Context) (int64, bool) {
	id, ok := ctx.Value(updateIDKey{}).(int64)
	return id, ok
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
