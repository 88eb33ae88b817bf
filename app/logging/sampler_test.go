package logging_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app/logging"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time       { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) add(d time.Duration)  { c.ns.Add(int64(d)) }
func newClock(start time.Time) *fakeClock { c := &fakeClock{}; c.ns.Store(start.UnixNano()); return c }
func allowed(s *logging.Sampler, n int) (k int) {
	for range n {
		if s.Allow(false) {
			k++
		}
	}
	return k
}

func TestSamplerFirstThenEveryMth(t *testing.T) {
	clock := newClock(time.Date(2025, 10, 22, 12, 0, 0, 0, time.UTC))
	s := logging.NewSampler(3, 4, clock.now)
	var got []bool
	for range 12 {
		got = append(got, s.Allow(false))
	}
	// first 3 pass, then the 4th, 8th... after them: records 7 and 11.
	want := []bool{true, true, true, false, false, false, true, false, false, false, true, false}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("record %d: got %v, want pattern %v, got %v", i+1, got[i], want, got)
		}
	}
	if s.Dropped() != 7 {
		t.Errorf("Dropped = %d, want 7", s.Dropped())
	}
	for range 100 {
		if !s.Allow(true) {
			t.Fatal("an error record was dropped")
		}
	}
	clock.add(999 * time.Millisecond) // same second (started at :00.000)
	if s.Allow(false) {
		t.Error("record 13 in the same second passed")
	}
	clock.add(time.Millisecond) // next second: the count starts again
	if n := allowed(s, 3); n != 3 {
		t.Errorf("new second: %d of the first 3 passed", n)
	}
}

func TestSamplerEdges(t *testing.T) {
	clock := newClock(time.Unix(0, 0))
	if n := allowed(logging.NewSampler(2, 0, clock.now), 100); n != 2 {
		t.Errorf("thereafter 0: %d passed, want 2", n)
	}
	if n := allowed(logging.NewSampler(0, 10, clock.now), 100); n != 10 {
		t.Errorf("first 0: %d passed, want 10", n)
	}
	if n := allowed(logging.NewSampler(-1, 1, clock.now), 50); n != 50 {
		t.Errorf("1 in 1: %d passed, want 50", n)
	}
	if n := allowed(logging.NewSampler(5, 5, nil), 5); n != 5 {
		t.Errorf("real clock: %d of the first 5 passed", n)
	}
}

// TestSamplerLaggingClock: a caller whose clock read is a second behind
// does not reopen the window for everyone.
func TestSamplerLaggingClock(t *testing.T) {
	var lag atomic.Bool
	base := time.Unix(1000, 0)
	s := logging.NewSampler(2, 0, func() time.Time {
		if lag.Load() {
			return base.Add(-time.Second)
		}
		return base
	})
	allowed(s, 2)
	lag.Store(true)
	if s.Allow(false) {
		t.Error("a lagging read reopened the window")
	}
}

func TestSamplerConcurrent(t *testing.T) {
	const goroutines, each, first, every = 8, 1000, 100, 10
	clock := newClock(time.Unix(5000, 0))
	s := logging.NewSampler(first, every, clock.now)
	var passed atomic.Int64
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range each {
				if s.Allow(false) {
					passed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	total := goroutines * each
	if want := first + (total-first)/every; passed.Load() != int64(want) {
		t.Errorf("%d passed, want %d", passed.Load(), want)
	}
	if int(s.Dropped())+int(passed.Load()) != total {
		t.Errorf("dropped %d + passed %d != %d", s.Dropped(), passed.Load(), total)
	}
}
