package cache

import (
	"context"
	"sync"
)

// flight is one in-progress compute that concurrent callers share.
type flight struct {
	done    chan struct{} // closed once val and err are final
	val     any
	err     error
	waiters int // callers that joined after the leader; guarded by flightGroup.mu
}

// flightGroup collapses concurrent computes of one Key (a small singleflight).
type flightGroup struct {
	mu sync.Mutex
	m  map[Key]*flight // guarded by mu
}

// join returns the flight for k and whether the caller leads it (must run
// the compute and call finish) or should wait on it.
func (g *flightGroup) join(k Key) (f *flight, leader bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if f, ok := g.m[k]; ok {
		f.waiters++
		return f, false
	}
	if g.m == nil {
		g.m = make(map[Key]*flight)
	}
	f = &flight{done: make(chan struct{})}
	g.m[k] = f
	return f, true
}

// finish publishes the leader's result and lets the next miss start afresh.
func (g *flightGroup) finish(k Key, f *flight) {
	g.mu.Lock()
	delete(g.m, k)
	g.mu.Unlock()
	close(f.done)
}

// waiting reports how many callers wait on k's flight (for tests).
func (g *flightGroup) waiting(k Key) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if f, ok := g.m[k]; ok {
		return f.waiters
	}
	return 0
}

// wait blocks until f finishes or ctx ends.
func (f *flight) wait(ctx context.Context) (any, error) {
	select {
	case <-f.done:
		return f.val, f.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// GetOrCompute returns the value under k, or runs compute, stores its result
// with the cost it reports for class's TTL, and returns it.
//
// Concurrent misses for the same k run compute once; the others wait for it
// (or for their ctx) and share its value or error. Errors are not cached: the
// next call after a failed compute computes again. compute must derive the
// value from the record at version k.Version or newer, never older — that is
// what keeps versioned keys free of stale values. If compute panics, the
// panic propagates to its caller and the waiters get ErrComputePanicked.
func GetOrCompute[V any](ctx context.Context, c *Cache, k Key, class Class, compute func() (V, int64, error)) (V, error) {
	var zero V
	if v, ok := Get[V](c, k); ok {
		return v, nil
	}
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	if c == nil {
		v, _, err := compute()
		return v, err
	}
	f, leader := c.flights.join(k)
	if leader {
		return lead(c, k, class, f, compute)
	}
	val, err := f.wait(ctx)
	if err != nil {
		return zero, err
	}
	if v, ok := val.(V); ok {
		return v, nil
	}
	// The leader computed another type under the same Key (a caller bug);
	// compute our own rather than fail, and leave the cache to the leader.
	v, _, err := compute()
	return v, err
}

// lead runs compute for the flight f and always finishes f, even when compute
// panics, so waiters never hang.
func lead[V any](c *Cache, k Key, class Class, f *flight, compute func() (V, int64, error)) (v V, err error) {
	returned := false
	defer func() {
		if !returned {
			f.err = ErrComputePanicked
		}
		c.flights.finish(k, f)
	}()
	v, cost, err := compute()
	returned = true
	if err != nil {
		f.err = err
		var zero V
		return zero, err
	}
	Set(c, k, v, cost, class)
	f.val = v
	return v, nil
}
