package wireguard

import (
	"net/netip"
	"testing"
	"time"
)

// TestGreetingsCancelled: a client that initiates before its greeting is
// due cancels it; one that does not is greeted, once.
func TestGreetingsCancelled(t *testing.T) {
	var g greetings
	early, late := [32]byte{1}, [32]byte{2}
	g.watch([][32]byte{early, late})
	if g.n.Load() != 2 {
		t.Fatalf("%d greetings watched, want 2", g.n.Load())
	}
	g.initiated(early)
	g.initiated([32]byte{3}) // not watched: nothing to cancel
	greeted := 0
	greet := func() { greeted++ }
	if g.send(early, greet); greeted != 0 {
		t.Fatal("a client that initiated itself was greeted")
	}
	if g.send(late, greet); greeted != 1 {
		t.Fatal("a client that did not initiate was not greeted")
	}
	if g.send(late, greet); greeted != 1 || g.n.Load() != 0 {
		t.Fatalf("greeted %d times, %d greetings left after sending", greeted, g.n.Load())
	}
}

// TestCrossings: once the server sent an initiation to an address, a
// client's initiation from there (IPv4-mapped or not) is dropped for
// crossWindow; from elsewhere, or later, it passes, and pruning reopens the
// fast path.
func TestCrossings(t *testing.T) {
	var c crossings
	ep, other := netip.MustParseAddrPort("192.0.2.7:5000"), netip.MustParseAddrPort("192.0.2.8:5000")
	mapped := netip.AddrPortFrom(netip.AddrFrom16(ep.Addr().As16()), ep.Port())
	now := time.Now()
	if c.crosses(ep, now) {
		t.Fatal("crossing with no initiation sent")
	}
	c.sent(mapped, now)
	c.sent(other, now.Add(-crossWindow))
	for _, k := range []struct {
		src  netip.AddrPort
		at   time.Duration
		want bool
	}{{ep, 10 * time.Millisecond, true}, {mapped, time.Second, true}, {other, 0, false},
		{netip.MustParseAddrPort("192.0.2.7:5001"), 0, false}, {ep, crossWindow, false}} {
		if got := c.crosses(k.src, now.Add(k.at)); got != k.want {
			t.Errorf("initiation from %v %v after the server's: crosses %v, want %v", k.src, k.at, got, k.want)
		}
	}
	c.sent(ep, now)
	c.prune(now.Add(crossWindow))
	if c.n.Load() != 0 {
		t.Fatalf("%d initiations remembered after crossWindow", c.n.Load())
	}
}
