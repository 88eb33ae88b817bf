package outline

import (
	"sync"
	"time"
)

// saltFilter remembers recently seen salts in two generations: salts land in
// the current one, and the older one is dropped when the current one fills
// or outlives the window. Memory is bounded by 2×capacity salts, and a salt
// is remembered for at least min(window, the time capacity salts take to
// arrive). A replay older than that gets through, the trade-off
// outline-ss-server makes too: a bounded filter cannot remember forever.
type saltFilter struct {
	mu       sync.Mutex
	cur, old map[[maxSaltSize]byte]struct{}
	capacity int
	window   time.Duration
	started  time.Time
	now      func() time.Time
}

func newSaltFilter(capacity int, window time.Duration, now func() time.Time) *saltFilter {
	return &saltFilter{cur: make(map[[maxSaltSize]byte]struct{}), old: map[[maxSaltSize]byte]struct{}{},
		capacity: capacity, window: window, started: now(), now: now}
}

// add records salt and reports whether it was new.
func (f *saltFilter) add(salt []byte) bool {
	var k [maxSaltSize]byte
	copy(k[:], salt)
	k[maxSaltSize-1] ^= byte(len(salt)) // 16-byte salts never collide with 32-byte ones
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.cur[k]; ok {
		return false
	}
	if _, ok := f.old[k]; ok {
		return false
	}
	if now := f.now(); len(f.cur) >= f.capacity || now.Sub(f.started) >= f.window {
		f.old, f.cur, f.started = f.cur, make(map[[maxSaltSize]byte]struct{}, len(f.cur)), now
	}
	f.cur[k] = struct{}{}
	return true
}
