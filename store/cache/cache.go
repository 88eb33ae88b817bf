package cache

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
	"github.com/dgraph-io/ristretto/v2"
)

// Sizing of ristretto's admission sketch. ristretto wants ~10 counters per
// entry it will hold; derived values are mostly a few hundred bytes (configs)
// to a few KiB (QR codes), so we guess entries from MaxBytes.
const (
	avgEntryBytes = 512
	countersPer   = 10
	minCounters   = 1 << 10
	maxCounters   = 1 << 24
	bufferItems   = 64 // ristretto's recommended Get buffer size
)

// Options configures a Cache. The zero value is a disabled cache.
type Options struct {
	// MaxBytes bounds the summed cost of held values (plus per-entry
	// overhead). 0 disables the cache; negative is an error.
	MaxBytes int64
	// Metrics, if not nil, receives the cache's metrics (see the package
	// doc). Only one open Cache may report on a given set.
	Metrics *metrics.Set
}

// Cache holds derived values under versioned keys. It is safe for concurrent
// use, except that Close must not run concurrently with other methods (it is
// called at shutdown, after every user has stopped). A nil *Cache is a
// disabled cache.
type Cache struct {
	rc      *ristretto.Cache[uint64, entry] // nil when disabled
	metrics *cacheMetrics                   // nil when Options.Metrics is nil
	flights flightGroup

	closeOnce sync.Once
	closed    atomic.Bool // set before ristretto's Close clears (and "evicts") everything
}

// entry is what ristretto holds: the value and the full Key it was stored
// under, compared on Get to turn hash collisions into misses.
type entry struct {
	key Key
	val any
}

// New returns a cache bounded by opts.MaxBytes, or a disabled cache when
// MaxBytes is 0. Close releases its goroutines.
func New(opts Options) (*Cache, error) {
	if opts.MaxBytes < 0 {
		return nil, ErrNegativeMaxBytes
	}
	c := &Cache{}
	if opts.Metrics != nil {
		if slices.Contains(opts.Metrics.ListMetricNames(), bytesGaugeName) {
			return nil, ErrMetricsInUse
		}
		c.metrics = newCacheMetrics(opts.Metrics)
	}
	if opts.MaxBytes > 0 {
		rc, err := ristretto.NewCache(&ristretto.Config[uint64, entry]{
			NumCounters: numCounters(opts.MaxBytes),
			MaxCost:     opts.MaxBytes,
			BufferItems: bufferItems,
			// Keys are already xxhash digests; the collision check is ours.
			KeyToHash: func(h uint64) (uint64, uint64) { return h, 0 },
			OnEvict:   c.onEvict,
		})
		if err != nil {
			return nil, fmt.Errorf("creating ristretto cache: %w", err)
		}
		c.rc = rc
	}
	if opts.Metrics != nil {
		opts.Metrics.NewGauge(bytesGaugeName, c.heldBytes)
	}
	return c, nil
}

func numCounters(maxBytes int64) int64 {
	n := maxBytes / avgEntryBytes * countersPer
	return min(max(n, minCounters), maxCounters)
}

// onEvict counts entries pushed out for room. ristretto reports TTL expiry
// (with the expiration set) and Close's clearing through the same callback;
// neither is an eviction.
func (c *Cache) onEvict(it *ristretto.Item[entry]) {
	if c.metrics == nil || c.closed.Load() || !it.Expiration.IsZero() {
		return
	}
	c.metrics.evictions.Inc()
}

// heldBytes is the cost currently held, for the usipipo_cache_bytes gauge.
func (c *Cache) heldBytes() float64 {
	if c.rc == nil || c.closed.Load() {
		return 0
	}
	return float64(c.rc.MaxCost() - c.rc.RemainingCost())
}

// Close stops the cache's goroutines, drops every value and unregisters the
// bytes gauge. It is idempotent and returns after the goroutines have exited.
// Afterwards the cache behaves as disabled.
func (c *Cache) Close() {
	if c == nil {
		return
	}
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		if c.metrics != nil {
			c.metrics.set.UnregisterMetric(bytesGaugeName)
		}
		if c.rc != nil {
			c.rc.Close()
		}
	})
}

// Wait blocks until every buffered Set has been applied (or refused). Sets are
// asynchronous; tests call Wait before asserting on Get.
func (c *Cache) Wait() {
	if c == nil || c.rc == nil || c.closed.Load() {
		return
	}
	c.rc.Wait()
}

// Get returns the value stored under k if it is present, unexpired and of
// type V.
func Get[V any](c *Cache, k Key) (V, bool) {
	var zero V
	if c == nil {
		return zero, false
	}
	stats := c.metrics.forKind(k.Kind)
	if c.rc != nil {
		if e, ok := c.rc.Get(k.hash()); ok && e.key == k {
			if v, ok := e.val.(V); ok {
				stats.hit()
				return v, true
			}
		}
	}
	stats.miss()
	return zero, false
}

// Set stores v under k for class's TTL. cost is v's size in bytes; the key's
// own size is added. The set is applied asynchronously and may be refused
// (admission policy, contention, cost above MaxBytes), so it is only a hint.
// v must not be mutated afterwards: readers share it.
func Set[V any](c *Cache, k Key, v V, cost int64, class Class) {
	if c == nil || c.rc == nil || c.closed.Load() {
		return
	}
	c.rc.SetWithTTL(k.hash(), entry{key: k, val: v}, max(cost, 0)+k.size(), class.ttl())
}
