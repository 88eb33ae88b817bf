package pay

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/usipipo/usipipo/store"
)

// updWriter is the one writer of the Updates telemetry: persisted updates
// (with the getUpdates offset that confirms them) and processing receipts.
// A write starts as soon as the previous one ended and takes everything
// queued meanwhile, so concurrent webhook requests, successive polls and the
// lanes' receipts share fsyncs with no timer on the path of a persist.
// Receipts never start a write while persists keep coming: they ride along
// with the next persist, or go alone once they have waited receiptDelay.
type updWriter struct {
	st *store.Store

	mu       sync.Mutex
	idle     *sync.Cond // broadcast when a write loop ends
	persists []*persistReq
	receipts map[string][]byte
	thens    []func(error) // told when the receipts queued are written (or failed)
	due      bool          // receipts waited long enough to go alone
	timer    bool          // a receiptDelay timer is pending
	busy     bool          // a write loop runs
	writes   int           // transactions committed or failed, for tests
}

type persistReq struct {
	ups    []*Update
	offset int64 // 0: none
	done   chan error
}

// receiptDelay bounds how long a receipt waits for a persist to ride along
// with. A receipt only spares reprocessing (which is idempotent) after a
// crash, so it stays off the path of the grant and its answer.
const receiptDelay = 100 * time.Millisecond

func newUpdWriter(st *store.Store) *updWriter {
	w := &updWriter{st: st}
	w.idle = sync.NewCond(&w.mu)
	return w
}

// persist stores ups as pending — except those already receipted, checked
// inside the transaction so a receipt written first wins — and the offset,
// and returns once that is committed and fsynced.
func (w *updWriter) persist(ups []*Update, offset int64) error {
	r := &persistReq{ups: ups, offset: offset, done: make(chan error, 1)}
	w.mu.Lock()
	w.persists = append(w.persists, r)
	w.kick()
	w.mu.Unlock()
	return <-r.done
}

// receipt queues receipt values (nil deletes) and calls then once they are
// durable, or with the error when their write failed.
func (w *updWriter) receipt(vals map[string][]byte, then func(error)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.receipts == nil {
		w.receipts = map[string][]byte{}
	}
	for k, v := range vals {
		w.receipts[k] = v
	}
	w.thens = append(w.thens, then)
	if !w.timer {
		w.timer = true
		time.AfterFunc(receiptDelay, func() {
			w.mu.Lock()
			w.timer = false
			w.due = true
			w.kick()
			w.mu.Unlock()
		})
	}
}

// flush writes the queued receipts now and waits for every write.
func (w *updWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.due = true
	w.kick()
	for w.busy {
		w.idle.Wait()
	}
}

// kick starts the write loop if there is work and none runs. w.mu is held.
func (w *updWriter) kick() {
	if w.busy || (len(w.persists) == 0 && (!w.due || len(w.thens) == 0)) {
		return
	}
	w.busy = true
	go w.loop()
}

func (w *updWriter) loop() {
	w.mu.Lock()
	for len(w.persists) > 0 || (w.due && len(w.thens) > 0) {
		ps, rs, thens := w.persists, w.receipts, w.thens
		w.persists, w.receipts, w.thens, w.due = nil, nil, nil, false
		w.mu.Unlock()
		err := w.write(ps, rs)
		w.mu.Lock()
		w.writes++
		w.mu.Unlock()
		for _, p := range ps {
			p.done <- err
		}
		for _, f := range thens {
			f(err)
		}
		w.mu.Lock()
	}
	w.busy = false
	w.idle.Broadcast()
	w.mu.Unlock()
}

// write commits persists and receipts in one transaction.
func (w *updWriter) write(ps []*persistReq, receipts map[string][]byte) error {
	var offset int64
	err := w.st.UpdateTelemetry(store.Updates, func(tx store.TelemetryTx) error {
		for _, p := range ps {
			for _, u := range p.ups {
				if tx.Has(updKey(updDone, u.ID)) {
					continue // processed (and receipted) before its persist came
				}
				if err := tx.Put(updKey(updPending, u.ID), u.Raw); err != nil {
					return err
				}
			}
			offset = max(offset, p.offset)
		}
		if offset > 0 {
			if err := tx.Put(updOffset, strconv.AppendInt(nil, offset, 10)); err != nil {
				return err
			}
		}
		for k, v := range receipts {
			if err := tx.Put(k, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("writing updates: %w", err)
	}
	return nil
}
