package egress

import (
	"container/list"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// flowLimiter is a token bucket per credential id, for new flows.
//
// Memory is bounded two ways: a bucket idle for longer than it takes to refill
// completely is dropped (a fresh bucket is full too, so nothing is lost), and at
// most max buckets are kept, the least recently used going first (that
// credential then starts again with a full bucket).
type flowLimiter struct {
	limit rate.Limit
	burst int
	idle  time.Duration // time for an empty bucket to refill
	max   int

	mu     sync.Mutex
	byCred map[string]*list.Element // of *bucket; guarded by mu
	lru    list.List                // front = most recently used; guarded by mu
}

type bucket struct {
	cred string
	last time.Time
	lim  *rate.Limiter
}

func newFlowLimiter(perSecond float64, burst, maxTracked int) *flowLimiter {
	return &flowLimiter{
		limit:  rate.Limit(perSecond),
		burst:  burst,
		idle:   time.Duration(float64(burst) / perSecond * float64(time.Second)),
		max:    maxTracked,
		byCred: make(map[string]*list.Element),
	}
}

// allow takes one token from cred's bucket at now.
func (f *flowLimiter) allow(cred string, now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b *bucket
	if e, ok := f.byCred[cred]; ok {
		b = e.Value.(*bucket)
		f.lru.MoveToFront(e)
	} else {
		b = &bucket{cred: cred, lim: rate.NewLimiter(f.limit, f.burst)}
		f.byCred[cred] = f.lru.PushFront(b)
	}
	b.last = now
	f.trimLocked(now)
	return b.lim.AllowN(now, 1)
}

// trimLocked drops buckets from the least recently used end while there are
// too many or they are idle. The bucket just used is at the front and stays.
func (f *flowLimiter) trimLocked(now time.Time) {
	for f.lru.Len() > 1 {
		e := f.lru.Back()
		b := e.Value.(*bucket)
		if f.lru.Len() <= f.max && now.Sub(b.last) < f.idle {
			return
		}
		f.lru.Remove(e)
		delete(f.byCred, b.cred)
	}
}

// tracked returns the number of buckets kept.
func (f *flowLimiter) tracked() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lru.Len()
}
