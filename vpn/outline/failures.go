package outline

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// failLimiter rate-limits failed handshakes per source address. It is
// consulted before any key search, so a flood of garbage from one source
// costs the server at most rate×keys trials per second, not line rate.
type failLimiter struct {
	mu       sync.Mutex
	byIP     map[netip.Addr]*rate.Limiter
	every    rate.Limit
	burst    int
	capacity int
}

func newFailLimiter(perSecond float64, burst, capacity int) *failLimiter {
	return &failLimiter{byIP: map[netip.Addr]*rate.Limiter{}, every: rate.Limit(perSecond), burst: burst, capacity: capacity}
}

// blocked reports whether src has used up its failures; it takes nothing.
func (f *failLimiter) blocked(src netip.Addr, now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.byIP[src]
	return l != nil && l.TokensAt(now) < 1
}

// failed charges src for one failed handshake.
func (f *failLimiter) failed(src netip.Addr, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.byIP[src]
	if l == nil {
		if len(f.byIP) >= f.capacity {
			f.prune(now)
		}
		l = rate.NewLimiter(f.every, f.burst)
		f.byIP[src] = l
	}
	l.AllowN(now, 1)
}

// prune forgets sources whose bucket refilled (they are back to the
// default); if none did, it forgets everything rather than grow.
func (f *failLimiter) prune(now time.Time) {
	for a, l := range f.byIP {
		if l.TokensAt(now) >= float64(f.burst) {
			delete(f.byIP, a)
		}
	}
	if len(f.byIP) >= f.capacity {
		clear(f.byIP)
	}
}
