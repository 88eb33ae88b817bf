package notify

import (
	"fmt"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/usipipo/usipipo/store"
)

// Delivery receipts are node-local telemetry (store.Receipts), one per
// (recipient, kind, subject, threshold, channel), so a notification is sent
// once however often a scan finds it due.
//
// The protocol writes a receipt twice: "pending" (fsynced) just before the
// request, and its outcome just after. A send that certainly did not happen
// (a refusal, a 429, a transport error, a cancelled wait) deletes the
// pending receipt, so the next scan tries again: nothing is lost to an
// error. Only a crash during the request itself leaves "pending" behind, and
// then nobody can know whether Telegram got it — the Bot API has no
// idempotency key. Such a receipt counts as delivered (at most once): a
// doubled message is visible to every user, a lost one only in the
// one-request window of a crash, and the user can always see their state in
// the bot. Status reports these as "uncertain".

// Receipt states, the first byte of a receipt's value.
const (
	rcPending = 'p' // the request may be in flight
	rcSent    = 's'
	rcBlocked = 'b' // the user blocked the bot
	rcFailed  = 'f' // a definite refusal (bad chat, bad address): never retried
)

// receiptValue is a state and when it was reached.
func receiptValue(state byte, at time.Time) []byte {
	return append([]byte{state}, strconv.FormatInt(at.Unix(), 10)...)
}

// receipts reads and writes delivery receipts. Writes from concurrent
// senders are group-committed: one fsynced transaction carries every write
// that queued while the previous one was committing, and each writer
// returns only once its own write is durable. A broadcast's 30 concurrent
// sends thus cost about one fsync per round, not two per message.
type receipts struct {
	st *store.Store
	gc *groupCommit
}

func newReceipts(st *store.Store) receipts { return receipts{st: st, gc: &groupCommit{st: st}} }

type groupCommit struct {
	st *store.Store

	mu      sync.Mutex
	busy    bool // a writer is committing; others queue
	pending map[string][]byte
	waiters []chan error
}

// put writes kv (nil values delete) and returns when it is committed.
func (g *groupCommit) put(kv map[string][]byte) error {
	done := make(chan error, 1)
	g.mu.Lock()
	if g.pending == nil {
		g.pending = map[string][]byte{}
	}
	maps.Copy(g.pending, kv)
	g.waiters = append(g.waiters, done)
	if g.busy {
		g.mu.Unlock()
		return <-done
	}
	g.busy = true
	for len(g.waiters) > 0 {
		batch, ws := g.pending, g.waiters
		g.pending, g.waiters = nil, nil
		g.mu.Unlock()
		err := g.st.PutTelemetry(store.Receipts, batch)
		for _, w := range ws {
			w <- err
		}
		g.mu.Lock()
	}
	g.busy = false
	g.mu.Unlock()
	return <-done
}

// state returns a receipt's state, 0 when there is none.
func (r receipts) state(key string) (byte, error) {
	v, err := r.st.GetTelemetry(store.Receipts, key)
	if err != nil {
		return 0, fmt.Errorf("reading receipt: %w", err)
	}
	if len(v) == 0 {
		return 0, nil
	}
	return v[0], nil
}

func (r receipts) put(key string, state byte, at time.Time) error {
	if err := r.gc.put(map[string][]byte{key: receiptValue(state, at)}); err != nil {
		return fmt.Errorf("writing receipt: %w", err)
	}
	return nil
}

func (r receipts) drop(key string) error {
	if err := r.gc.put(map[string][]byte{key: nil}); err != nil {
		return fmt.Errorf("clearing receipt: %w", err)
	}
	return nil
}

// once runs send unless key has a receipt. send calls claim just before its
// request leaves (after any wait for the limiter), which writes the pending
// receipt; once writes the outcome after. It reports the outcome (outDone
// when a receipt existed).
func (r receipts) once(key string, now func() time.Time, send func(claim func() error) outcome) (outcome, error) {
	st, err := r.state(key)
	if err != nil || st != 0 {
		return outDone, err
	}
	claimed := false
	claim := func() error {
		if claimed {
			return nil
		}
		claimed = true
		return r.put(key, rcPending, now())
	}
	out := send(claim)
	switch {
	case out == outSent:
		err = r.put(key, rcSent, now())
	case out == outBlocked:
		err = r.put(key, rcBlocked, now())
	case out == outFailed:
		err = r.put(key, rcFailed, now())
	case claimed:
		err = r.drop(key)
	}
	return out, err
}

// Bot-blocked marks: users whose chat answered 403. They are skipped by
// notifications and broadcasts until Unblock (the bot calls it when the
// user writes again). The mark is node-local like the receipts: it is about
// this bot's chat, not a domain fact (a ban is SetBanned).
const blockedPrefix = "botblocked/"

func (r receipts) blocked(userID string) (bool, error) {
	v, err := r.st.GetTelemetry(store.Receipts, blockedPrefix+userID)
	return v != nil, err
}

func (r receipts) setBlocked(userID string, at time.Time, on bool) error {
	var v []byte
	if on {
		v = receiptValue(rcBlocked, at)
	}
	if err := r.gc.put(map[string][]byte{blockedPrefix + userID: v}); err != nil {
		return fmt.Errorf("marking user blocked: %w", err)
	}
	return nil
}

// allBlocked returns the users marked blocked.
func (r receipts) allBlocked() (map[string]bool, error) {
	out := map[string]bool{}
	err := r.st.ScanTelemetry(store.Receipts, blockedPrefix, func(k, _ []byte) bool {
		out[string(k[len(blockedPrefix):])] = true
		return true
	})
	return out, err
}
