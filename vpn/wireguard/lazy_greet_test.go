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
	if g.send(early) {
		t.Fatal("a client that initiated itself was greeted")
	}
	if !g.send(late) {
		t.Fatal("a client that did not initiate was not greeted")
	}
	if g.send(late) || g.n.Load() != 0 {
		t.Fatalf("%d greetings left after sending", g.n.Load())
	}
}

// TestCrossings: whichever side's initiation comes first wins. Once the
// server sent one to an address, a client's from there (IPv4-mapped or
// not) is dropped for crossWindow; once a client's passed, the server's to
// its address is held back as long, or until the device answered it. From
// elsewhere, or later, both pass.
func TestCrossings(t *testing.T) {
	var c crossings
	ep, other := netip.MustParseAddrPort("192.0.2.7:5000"), netip.MustParseAddrPort("192.0.2.8:5000")
	mapped := netip.AddrPortFrom(netip.AddrFrom16(ep.Addr().As16()), ep.Port())
	now := time.Now()
	if !c.send(mapped, now) {
		t.Fatal("the server's initiation held back with no client's heard")
	}
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
	// other and ep (at crossWindow) were heard: the server's are held back.
	if c.send(other, now.Add(time.Second)) || c.send(ep, now.Add(crossWindow+time.Second)) {
		t.Fatal("the server's initiation sent to a client whose own just passed")
	}
	if !c.send(other, now.Add(crossWindow)) {
		t.Fatal("the server's initiation held back past crossWindow")
	}
	// Once the device answered the client's, its own may go.
	c.crosses(ep, now.Add(crossWindow+time.Second))
	c.answered(mapped)
	if !c.send(ep, now.Add(crossWindow+time.Second)) {
		t.Fatal("the server's initiation held back after the device answered the client's")
	}
	c.prune(now.Add(3 * crossWindow))
	if len(c.sentTo)+len(c.heard) != 0 {
		t.Fatalf("%d initiations remembered after crossWindow", len(c.sentTo)+len(c.heard))
	}
}
