package pay

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/usipipo/usipipo/store"
)

func testUpdate(t *testing.T, id int64) *Update {
	t.Helper()
	u, err := DecodeUpdate(mustJSON(map[string]any{"update_id": id, "message": map[string]any{"message_id": 1, "chat": map[string]any{"id": id}, "text": "x"}}))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// A receipt written before the update's own persist (the lanes handle an
// update while it is fsynced) wins: the persist does not make a processed
// update pending again, which would have it handled twice.
func TestIntakeReceiptBeforePersist(t *testing.T) {
	w := newWorld(t)
	in := NewIntake(w.st, &recorder{}, 1, nil)
	u := testUpdate(t, 7)
	var got error = errPending
	in.w.receipt(map[string][]byte{updKey(updPending, 7): nil, updKey(updDone, 7): {1}}, func(err error) { got = err })
	in.w.flush()
	if got != nil {
		t.Fatalf("receipt: %v", got)
	}
	if err := in.w.persist([]*Update{u, testUpdate(t, 8)}, 9); err != nil {
		t.Fatal(err)
	}
	if keys := updateKeys(t, w.st, 7); len(keys) != 1 || keys[0] != updKey(updDone, 7) {
		t.Fatalf("update 7: %v, want only its receipt", keys)
	}
	if keys := updateKeys(t, w.st, 8); len(keys) != 1 || keys[0] != updKey(updPending, 8) {
		t.Fatalf("update 8: %v, want it pending", keys)
	}
	if off, err := in.offset(); err != nil || off != 9 {
		t.Fatalf("offset %d %v", off, err)
	}
	// Delivered again: not admitted.
	ups, err := in.Persist([]json.RawMessage{u.Raw}, 0)
	if err != nil || len(ups) != 0 {
		t.Fatalf("redelivery admitted %d: %v", len(ups), err)
	}
}

var errPending = errTest("not called")

type errTest string

func (e errTest) Error() string { return string(e) }

// Persists that arrive while a write runs share the next transaction, and
// queued receipts ride along with it instead of costing a write of their own.
func TestIntakeGroupCommit(t *testing.T) {
	w := newWorld(t)
	in := NewIntake(w.st, &recorder{}, 1, nil)
	// Hold bbolt's writer: the first persist's write waits behind it, and
	// the persists and the receipt queued meanwhile must share one write.
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	go w.st.UpdateTelemetry(store.Checkpoints, func(store.TelemetryTx) error {
		close(held)
		<-release
		return nil
	})
	<-held
	queued := func(k int) func() bool {
		return func() bool {
			in.w.mu.Lock()
			defer in.w.mu.Unlock()
			return in.w.busy && len(in.w.persists) == k
		}
	}
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	persist := func(i int) {
		wg.Go(func() { errs <- in.w.persist([]*Update{testUpdate(t, int64(100+i))}, 0) })
	}
	persist(0)
	waitFor(t, "the first write", queued(0))
	in.w.receipt(map[string][]byte{updKey(updDone, 1): {1}}, func(error) {})
	for i := 1; i < n; i++ {
		persist(i)
	}
	waitFor(t, "persists queued", queued(n-1))
	unblock()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := pendingCount(w.st); n != 20 {
		t.Fatalf("%d pending, want 20", n)
	}
	if keys := updateKeys(t, w.st, 1); len(keys) != 1 {
		t.Fatalf("receipt not written with the persists: %v", keys)
	}
	in.w.mu.Lock()
	writes := in.w.writes
	in.w.mu.Unlock()
	if writes != 2 {
		t.Fatalf("%d writes for one persist, then %d concurrent ones and a receipt: want 2", writes, n-1)
	}
}

// Handlers learn the update_id they handle, to key side effects by it.
func TestIntakeUpdateIDInContext(t *testing.T) {
	w := newWorld(t)
	got := make(chan int64, 1)
	in := NewIntake(w.st, HandlerFunc(func(ctx context.Context, u *Update) error {
		id, ok := UpdateID(ctx)
		if !ok {
			id = -1
		}
		got <- id
		return nil
	}), 1, nil)
	if err := in.handle(ctx(), testUpdate(t, 42)); err != nil {
		t.Fatal(err)
	}
	if id := <-got; id != 42 {
		t.Fatalf("UpdateID %d, want 42", id)
	}
	if _, ok := UpdateID(ctx()); ok {
		t.Fatal("UpdateID outside a handler")
	}
}
