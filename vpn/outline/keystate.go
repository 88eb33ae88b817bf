package outline

import (
	"context"
	"io"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/usipipo/usipipo/app/plane"
	"github.com/usipipo/usipipo/store/model"
)

// maxSources bounds the distinct client addresses remembered per key.
const maxSources = 4096

// keyConfig is what Apply hands a key; replaced as a whole.
type keyConfig struct {
	version uint64
	limits  model.Limits
	budget  uint64 // plane.NoBudget for none
	mark    uint64 // already 0 when the mark is from another epoch
	cipher  *Cipher
}

// keyState is one credential's live state. It outlives removal from the
// key set so that a key removed and added again within one epoch resumes
// its counters instead of going back to zero.
type keyState struct {
	id       string
	rx, tx   atomic.Uint64
	lastSeen atomic.Int64 // unix nanoseconds
	cfg      atomic.Pointer[keyConfig]
	up, down *rate.Limiter // bytes per second each way; Inf when unlimited
	throttle atomic.Bool   // over budget with a ThrottleBps

	mu      sync.Mutex
	conns   map[io.Closer]struct{} // TCP connections and UDP sessions
	sources map[netip.Addr]struct{}
	expiry  *time.Timer
}

func newKeyState(id string) *keyState {
	return &keyState{id: id, conns: map[io.Closer]struct{}{}, sources: map[netip.Addr]struct{}{},
		up: rate.NewLimiter(rate.Inf, 0), down: rate.NewLimiter(rate.Inf, 0)}
}

// configure installs cfg: limiters, expiry timer; live connections are left
// alone unless the new limits stop the key.
func (k *keyState) configure(cfg *keyConfig, now time.Time) {
	k.cfg.Store(cfg)
	k.throttle.Store(false)
	k.setSpeed(cfg.limits.SpeedBps)
	k.mu.Lock()
	if k.expiry != nil {
		k.expiry.Stop()
		k.expiry = nil
	}
	if at := cfg.limits.ExpiresAt; !at.IsZero() && at.After(now) {
		k.expiry = time.AfterFunc(at.Sub(now), k.closeAll)
	}
	k.mu.Unlock()
	if k.stopped(now) {
		k.closeAll()
	} else if k.overBudget() {
		k.budgetReached()
	}
}

// setSpeed sets both directions to bps bytes per second (0: unlimited).
// The burst is 50 ms of traffic and one datagram at least, so a limited
// flow is smooth and a
// large datagram can pass at all.
func (k *keyState) setSpeed(bps uint64) {
	lim, burst := rate.Inf, 0
	if bps > 0 {
		lim, burst = rate.Limit(bps), max(int(min(bps/20, 1<<30)), maxUDPPacket)
	}
	for _, l := range []*rate.Limiter{k.up, k.down} {
		l.SetBurst(burst)
		l.SetLimit(lim)
	}
}

func (k *keyState) used() uint64 { return k.rx.Load() + k.tx.Load() }

func (k *keyState) overBudget() bool {
	c := k.cfg.Load()
	if c == nil || c.budget == plane.NoBudget {
		return false
	}
	u := k.used()
	return u >= c.mark && u-c.mark >= c.budget
}

// stopped reports whether the key may not carry traffic now: removed,
// expired, or over its budget without a throttle speed.
func (k *keyState) stopped(now time.Time) bool {
	c := k.cfg.Load()
	if c == nil {
		return true
	}
	if at := c.limits.ExpiresAt; !at.IsZero() && !now.Before(at) {
		return true
	}
	return k.overBudget() && c.limits.ThrottleBps == 0
}

// budgetReached cuts the key, or throttles it to ThrottleBps.
func (k *keyState) budgetReached() {
	c := k.cfg.Load()
	if c == nil || c.limits.ThrottleBps == 0 {
		k.closeAll()
		return
	}
	if !k.throttle.Swap(true) {
		speed := c.limits.ThrottleBps
		if c.limits.SpeedBps > 0 {
			speed = min(speed, c.limits.SpeedBps)
		}
		k.setSpeed(speed)
	}
}

// count adds n bytes received (up) or sent and enforces the budget.
func (k *keyState) count(up bool, n int, now time.Time) {
	if up {
		k.rx.Add(uint64(n))
	} else {
		k.tx.Add(uint64(n))
	}
	k.lastSeen.Store(now.UnixNano())
	if k.overBudget() {
		k.budgetReached()
	}
}

// wait blocks until n bytes may pass in that direction.
func (k *keyState) wait(ctx context.Context, up bool, n int) error {
	l := k.down
	if up {
		l = k.up
	}
	if l.Limit() == rate.Inf {
		return nil
	}
	for n > 0 {
		step := min(n, max(l.Burst(), 1))
		if err := l.WaitN(ctx, step); err != nil {
			return err
		}
		n -= step
	}
	return nil
}

// register adds a connection or session from src, refusing it past MaxConns.
func (k *keyState) register(c io.Closer, src netip.Addr) bool {
	cfg := k.cfg.Load()
	k.mu.Lock()
	defer k.mu.Unlock()
	if cfg == nil || (cfg.limits.MaxConns > 0 && len(k.conns) >= cfg.limits.MaxConns) {
		return false
	}
	k.conns[c] = struct{}{}
	if len(k.sources) < maxSources {
		k.sources[src] = struct{}{}
	}
	return true
}

func (k *keyState) unregister(c io.Closer) {
	k.mu.Lock()
	delete(k.conns, c)
	k.mu.Unlock()
}

// closeAll closes every open connection and session of the key.
func (k *keyState) closeAll() {
	k.mu.Lock()
	cs := make([]io.Closer, 0, len(k.conns))
	for c := range k.conns {
		cs = append(cs, c)
	}
	k.mu.Unlock()
	for _, c := range cs {
		c.Close()
	}
}

// remove uninstalls the key: no new traffic, live connections closed.
func (k *keyState) remove() {
	k.cfg.Store(nil)
	k.mu.Lock()
	if k.expiry != nil {
		k.expiry.Stop()
		k.expiry = nil
	}
	k.mu.Unlock()
	k.closeAll()
}

func (k *keyState) counter() plane.Counter {
	k.mu.Lock()
	conns, srcs := len(k.conns), len(k.sources)
	k.mu.Unlock()
	c := plane.Counter{ID: k.id, Rx: k.rx.Load(), Tx: k.tx.Load(), Conns: conns, Sources: srcs}
	if ns := k.lastSeen.Load(); ns != 0 {
		c.LastSeen = time.Unix(0, ns)
	}
	return c
}
