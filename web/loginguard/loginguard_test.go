package loginguard

import (
	"fmt"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app/apptest"
)

func newGuard(free int) (*Guard, *apptest.Clock) {
	c := apptest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	return New(free, c.Now), c
}

func TestBackOffDoublesAfterFreeTries(t *testing.T) {
	g, c := newGuard(2)
	for i := range 2 {
		if w := g.Check("10.0.0.1", "admin"); w != 0 {
			t.Fatalf("free try %d: wait %v", i, w)
		}
		g.Fail("10.0.0.1", "admin")
	}
	for _, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second} {
		if w := g.Check("10.0.0.1", "admin"); w != want {
			t.Fatalf("wait %v, want %v", w, want)
		}
		c.Add(want - time.Millisecond)
		if w := g.Check("10.0.0.1", "admin"); w != time.Millisecond {
			t.Fatalf("just before the end: wait %v", w)
		}
		c.Add(time.Millisecond)
		if w := g.Check("10.0.0.1", "admin"); w != 0 {
			t.Fatalf("after the wait: %v", w)
		}
		g.Fail("10.0.0.1", "admin")
	}
}

func TestWaitIsCapped(t *testing.T) {
	g, _ := newGuard(1)
	for range 40 { // 2^39 s would overflow nothing, but must not be waited
		g.Fail("10.0.0.1", "admin")
	}
	if w := g.Check("10.0.0.1", "admin"); w != MaxWait {
		t.Fatalf("wait %v, want %v", w, MaxWait)
	}
}

func TestSucceedClearsEveryRecord(t *testing.T) {
	g, _ := newGuard(1)
	g.Fail("10.0.0.1", "admin")
	g.Fail("10.0.0.1", "admin")
	if g.Check("10.0.0.1", "admin") == 0 {
		t.Fatal("no back-off")
	}
	g.Succeed("10.0.0.1", "admin")
	if w := g.Check("10.0.0.1", "admin"); w != 0 {
		t.Fatalf("after a success: %v", w)
	}
	if len(g.fails) != 0 {
		t.Fatalf("records left: %v", g.fails)
	}
}

func TestForgottenAfterAnHour(t *testing.T) {
	g, c := newGuard(1)
	for range 10 {
		g.Fail("10.0.0.1", "admin")
	}
	c.Add(ForgetAfter + time.Second)
	if w := g.Check("10.0.0.1", "admin"); w != 0 {
		t.Fatalf("an hour later: %v", w)
	}
	g.Fail("10.0.0.1", "admin") // starts over: the first failure is free again
	if w := g.Check("10.0.0.1", "admin"); w != time.Second {
		t.Fatalf("one failure after starting over: %v", w)
	}
}

// The admin at another address is not locked out by a guesser at one
// address; a guesser at many addresses, or guessing many usernames, is
// slowed after the larger per-username or per-address allowance.
func TestPerAddressAndPerUsernameAllowances(t *testing.T) {
	const free = 2
	g, _ := newGuard(free)
	for range free {
		g.Fail("10.0.0.1", "admin")
	}
	if g.Check("10.0.0.1", "admin") == 0 {
		t.Fatal("the guessing pair is not slowed")
	}
	if w := g.Check("10.0.0.2", "admin"); w != 0 {
		t.Fatalf("the admin elsewhere waits %v", w)
	}
	if w := g.Check("10.0.0.1", "other"); w != 0 {
		t.Fatalf("another username from the guesser's address waits %v", w)
	}

	// One address, many usernames.
	g, _ = newGuard(free)
	for i := range free*IPFreeFactor - 1 {
		g.Fail("10.0.0.1", fmt.Sprint("user", i))
	}
	if w := g.Check("10.0.0.1", "fresh"); w != 0 {
		t.Fatalf("below the address's allowance: %v", w)
	}
	g.Fail("10.0.0.1", "last")
	if w := g.Check("10.0.0.1", "fresh"); w != time.Second {
		t.Fatalf("at the address's allowance: %v", w)
	}

	// One username, many addresses.
	g, _ = newGuard(free)
	for i := range free*UserFreeFactor - 1 {
		g.Fail(fmt.Sprintf("10.0.%d.1", i), "admin")
	}
	if w := g.Check("10.9.9.9", "admin"); w != 0 {
		t.Fatalf("below the username's allowance: %v", w)
	}
	g.Fail("10.0.200.1", "admin")
	if w := g.Check("10.9.9.9", "admin"); w != time.Second {
		t.Fatalf("at the username's allowance: %v", w)
	}
}

func TestDefaults(t *testing.T) {
	g := New(0, nil)
	for range DefaultFree {
		g.Fail("10.0.0.1", "admin")
	}
	if w := g.Check("10.0.0.1", "admin"); w <= 0 || w > time.Second {
		t.Fatalf("after DefaultFree failures: %v", w)
	}
}

// A full table sweeps forgotten records before growing.
func TestSweep(t *testing.T) {
	g, c := newGuard(1)
	for i := 0; len(g.fails) < maxEntries; i++ {
		g.Fail(fmt.Sprint("10.", i), "u")
	}
	c.Add(ForgetAfter + time.Second)
	g.Fail("192.0.2.1", "new")
	if len(g.fails) != 3 {
		t.Fatalf("%d records after a sweep, want the new attempt's 3", len(g.fails))
	}
}
