// Package testclock is a clock tests set by hand, for packages that cannot
// import app/apptest (app itself, and what app imports).
package testclock

import (
	"sync"
	"time"
)

// Clock is a clock a test sets and moves by hand; pass its Now method
// wherever a component takes a func() time.Time. It is safe for concurrent
// use, since the components read it from their own goroutines while the
// test moves it. The zero Clock reads the zero time.
type Clock struct {
	mu sync.Mutex
	t  time.Time // guarded by mu
}

// New returns a Clock reading start.
func New(start time.Time) *Clock { return &Clock{t: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock by d (backwards if d is negative).
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}
