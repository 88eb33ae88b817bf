package mtproto

import (
	"sync"
	"time"
)

// replayCache remembers handshake digests for at least window, in two
// generations: a digest is looked up in both and stored in the current
// one, which becomes the previous one every window. Each generation holds
// at most max digests; when the current one fills early it rotates early,
// which shortens the memory under a flood rather than growing it.
type replayCache struct {
	mu        sync.Mutex
	window    time.Duration
	max       int
	cur, prev map[[16]byte]struct{}
	rotated   time.Time
	early     int // rotations forced by a full generation
}

func newReplayCache(window time.Duration, max int, now time.Time) *replayCache {
	return &replayCache{window: window, max: max, cur: make(map[[16]byte]struct{}), prev: map[[16]byte]struct{}{}, rotated: now}
}

// seen reports whether d was seen within the window, and records it.
func (c *replayCache) seen(d [16]byte, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if age := now.Sub(c.rotated); age >= c.window {
		c.rotate(now)
		if age >= 2*c.window { // idle for two windows: both generations stale
			c.rotate(now)
		}
	}
	if _, ok := c.cur[d]; ok {
		return true
	}
	if _, ok := c.prev[d]; ok {
		return true
	}
	if len(c.cur) >= c.max {
		c.early++
		c.rotate(now)
	}
	c.cur[d] = struct{}{}
	return false
}

func (c *replayCache) rotate(now time.Time) {
	c.prev, c.cur = c.cur, make(map[[16]byte]struct{}, len(c.cur))
	c.rotated = now
}
