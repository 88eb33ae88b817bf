package wireguard

import (
	"net/netip"
	"testing"
	"time"
)

// TestGreetingsAgainstCrossing walks the greeting states the knock and
// greetStale share: a client that initiates before its greeting is due
// cancels it; once the greeting left, the client's own initiation from the
// greeted endpoint is dropped (it would cross), from elsewhere it passes,
// and after crossWindow it passes again and the greeting is forgotten.
func TestGreetingsAgainstCrossing(t *testing.T) {
	var g greetings
	early, late := [32]byte{1}, [32]byte{2}
	ep, other := netip.MustParseAddrPort("192.0.2.7:5000"), netip.MustParseAddrPort("192.0.2.8:5000")
	now := time.Now()
	g.watch([][32]byte{early, late}, now)
	if g.n.Load() != 2 {
		t.Fatalf("%d greetings watched, want 2", g.n.Load())
	}
	if !g.initiated(early, ep, now) {
		t.Fatal("an initiation before the greeting was dropped")
	}
	if g.send(early, ep, now) {
		t.Fatal("a client that initiated itself was greeted")
	}
	if !g.send(late, ep, now) {
		t.Fatal("a client that did not initiate was not greeted")
	}
	mapped := netip.AddrPortFrom(netip.AddrFrom16(ep.Addr().As16()), ep.Port())
	for _, c := range []struct {
		src  netip.AddrPort
		at   time.Duration
		pass bool
	}{{ep, 10 * time.Millisecond, false}, {mapped, time.Second, false}, {other, time.Second, true}, {ep, crossWindow, true}} {
		if got := g.initiated(late, c.src, now.Add(c.at)); got != c.pass {
			t.Errorf("initiation from %v %v after the greeting: passed %v, want %v", c.src, c.at, got, c.pass)
		}
	}
	g.prune(now.Add(crossWindow))
	if g.n.Load() != 0 {
		t.Fatalf("%d greetings left after crossWindow", g.n.Load())
	}
}
