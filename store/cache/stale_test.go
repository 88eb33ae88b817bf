package cache

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// rendering is a derived value that remembers the record version it was
// derived from.
type rendering struct {
	version uint64
	body    string
}

func render(version uint64) rendering {
	return rendering{version: version, body: "config for v" + strconv.FormatUint(version, 10)}
}

// TestWriteNeverShadowedByStaleEntry is the cache's core promise: while
// writers bump a record's version and write new derived values, a reader that
// has read version v never gets a value derived from a version below v.
//
// The "store" publishes the record before its version, as a bbolt transaction
// commits both at once: a reader that sees version v reads a record >= v.
func TestWriteNeverShadowedByStaleEntry(t *testing.T) {
	const (
		writers       = 4
		readers       = 8
		writesEach    = 2000
		recordID      = "k1"
		recordKind    = "key"
		renderVariant = "wg-conf"
	)
	// A small cache, so admission and eviction are in play too.
	c := newTestCache(t, Options{MaxBytes: 16 << 10})
	var (
		mu        sync.Mutex // serialises writers, like bbolt's single writer
		record    atomic.Pointer[rendering]
		published atomic.Uint64
	)
	record.Store(&rendering{})
	keyFor := func(v uint64) Key {
		return Key{Kind: recordKind, ID: recordID, Version: v, Variant: renderVariant}
	}

	var writersWG, readersWG sync.WaitGroup
	stop := make(chan struct{})
	var reads, stale atomic.Int64
	for range readers {
		readersWG.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				v := published.Load()
				got, err := GetOrCompute(context.Background(), c, keyFor(v), Configs,
					func() (rendering, int64, error) {
						r := render(record.Load().version)
						return r, int64(len(r.body)), nil
					})
				reads.Add(1)
				if err != nil {
					t.Errorf("GetOrCompute(v%d): %v", v, err)
					return
				}
				if got.version < v || got != render(got.version) {
					stale.Add(1)
					t.Errorf("read version %d, got value derived from v%d (%q)", v, got.version, got.body)
					return
				}
			}
		})
	}
	for range writers {
		writersWG.Go(func() {
			for range writesEach {
				mu.Lock()
				v := published.Load() + 1
				r := render(v)
				record.Store(&r)
				published.Store(v)
				mu.Unlock()
				// Write-through of the new derived value, racing the readers.
				Set(c, keyFor(v), r, int64(len(r.body)), Configs)
			}
		})
	}
	writersWG.Wait()
	close(stop)
	readersWG.Wait()
	if reads.Load() == 0 {
		t.Fatal("readers made no reads")
	}
	if n := stale.Load(); n > 0 {
		t.Fatalf("%d of %d reads were stale", n, reads.Load())
	}
	t.Logf("%d reads across %d versions, none stale", reads.Load(), published.Load())
}
