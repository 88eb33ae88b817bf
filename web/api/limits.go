package api

import (
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/time/rate"

	"github.com/usipipo/usipipo/web"
)

// limiter is a set of token buckets by name (a credential or a client
// address), each refilling at r per second with a burst of 2r. Idle
// buckets are dropped when the set grows past maxBuckets.
type limiter struct {
	r     rate.Limit
	burst int
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

const maxBuckets = 50000

func newLimiter(r rate.Limit, now func() time.Time) *limiter {
	b := int(math.Ceil(float64(r) * 2))
	if b < 1 {
		b = 1
	}
	return &limiter{r: r, burst: b, now: now, buckets: map[string]*bucket{}}
}

// allow takes a token for name, or says how long until one is there.
func (l *limiter) allow(name string) (bool, time.Duration) {
	if l.r < 0 || l.r == rate.Inf {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	b := l.buckets[name]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			l.sweepLocked(now)
		}
		b = &bucket{lim: rate.NewLimiter(l.r, l.burst)}
		l.buckets[name] = b
	}
	b.seen = now
	l.mu.Unlock()
	res := b.lim.ReserveN(now, 1)
	if !res.OK() {
		return false, time.Second
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

// sweepLocked drops buckets idle long enough to be full again.
func (l *limiter) sweepLocked(now time.Time) {
	full := time.Duration(float64(l.burst)/float64(l.r)*float64(time.Second)) + time.Second
	for k, b := range l.buckets {
		if now.Sub(b.seen) > full {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= maxBuckets { // all busy: start over rather than grow
		l.buckets = map[string]*bucket{}
	}
}

// tooMany is the 429 problem with Retry-After in whole seconds, rounded up.
func tooMany(c *fiber.Ctx, d time.Duration, detail string) error {
	secs := int(math.Ceil(d.Seconds()))
	if secs < 1 {
		secs = 1
	}
	c.Set(fiber.HeaderRetryAfter, strconv.Itoa(secs))
	return web.NewProblem(fiber.StatusTooManyRequests, problemType("rate-limited"), "Too many requests", detail)
}

func (a *api) limitIP(c *fiber.Ctx) error {
	if ok, d := a.ipLim.allow(c.IP()); !ok {
		a.m.rateLimited.Inc()
		return tooMany(c, d, "Too many requests from this address.")
	}
	return c.Next()
}

func (a *api) limitKey(c *fiber.Ctx) error {
	p := principalOf(c)
	if ok, d := a.keyLim.allow(p.id); !ok {
		a.m.rateLimited.Inc()
		return tooMany(c, d, "Too many requests with this credential.")
	}
	return c.Next()
}
