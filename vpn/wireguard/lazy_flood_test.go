package wireguard

import (
	"context"
	"crypto/rand"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/blake2s"

	"github.com/usipipo/usipipo/app/plane"
)

// TestParkedPeerUnderFlood: a flood of junk handshake initiations with a
// valid mac1 (anyone can compute it from the server's public key) from one
// source, well over the overall wake budget, does not keep a parked peer
// on another source from coming back at its client's first handshake,
// three times over; the junk is counted and dropped. The flood starts once
// the peer is on the device, with nothing parked, so that it must be
// sifted then too: let through, it put the device under load, which then
// answered the parked client with a cookie. Before the budget was per
// source, the flood spent it and the client waited for its retry 5 s
// later.
func TestParkedPeerUnderFlood(t *testing.T) {
	var skew atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	// An overall budget of 50 a second, flooded at 1,000: the proportions
	// of the real budget and a flood of 40,000 a second, at what a busy
	// machine sends and sifts under the race detector.
	srv := newTestServer(t, loopback, Options{Now: now, wakes: 50})
	web := startHTTP(t)
	p := newTestPeer(t, srv, "lazy", 0)
	if err := srv.Apply(context.Background(), []plane.Credential{p.cred}); err != nil {
		t.Fatal(err)
	}
	onDevice := func() bool { return strings.Contains(ipcGet(t, srv), "public_key="+p.keyHex()) }
	if onDevice() {
		t.Fatal("a peer without a handshake is on the device")
	}
	knocks := func(outcome string) int {
		v, _ := strconv.Atoi(srv.metric(t, `usipipo_wireguard_knocks_total{outcome="`+outcome+`"}`))
		return v
	}
	first, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if _, err := p.httpGet(first, web+"/hello"); err != nil {
		t.Fatalf("first handshake: %v", err)
	}
	cancel()
	flooded := floodInitiations(t, srv, "127.0.0.2", 1000)
	time.Sleep(200 * time.Millisecond) // the flood under way with nothing parked
	for round := range 3 {
		skew.Add(int64(DefaultParkAfter + time.Minute))
		eventually(t, 3*time.Second, "parking the idle peer", func() bool { return !onDevice() })
		p.connect(t) // a new handshake, as after the client's session expired
		// Within 4 s: the client's own retry comes after 5 s.
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
		start := time.Now()
		if _, err := p.httpGet(ctx, web+"/hello"); err != nil {
			cancel()
			snap, _ := srv.Counters(context.Background())
			cg, _ := p.dev.IpcGet()
			t.Logf("client: %s\nserver: %s\ncrossing: %s", cg, ipcGet(t, srv), srv.metric(t, `usipipo_wireguard_knocks_total{outcome="crossing"}`))
			t.Logf("knocks: %d junk, %d cookie, %d mac1, %d source, %d load, %d woken, %d not parked; device under load: %v; on device %v; %+v", knocks(knockJunk), knocks(knockCookie), knocks(knockMAC1), knocks(knockSource), knocks(knockLoad), knocks(knockWoken), knocks(knockNotMine), srv.dev.IsUnderLoad(), onDevice(), snap)
			t.Fatalf("round %d: the parked peer did not come back within 4 s under the flood (%d junk initiations sent): %v", round+1, flooded.Load(), err)
		}
		cancel()
		t.Logf("round %d: a page %v after the handshake began", round+1, time.Since(start).Round(time.Millisecond))
	}
	t.Logf("sent %d junk initiations; knocks: %d junk, %d held back for a cookie, %d over their source's budget, %d over the overall one, %d woken",
		flooded.Load(), knocks(knockJunk), knocks(knockCookie), knocks(knockSource), knocks(knockLoad), knocks(knockWoken))
	if knocks(knockJunk) == 0 || knocks(knockCookie) == 0 {
		t.Error("the junk was not counted")
	}
	if knocks(knockWoken) < 4 {
		t.Errorf("woken %d times, want 4", knocks(knockWoken))
	}
}

// floodInitiations sends handshake initiations to srv from laddr, random
// but for a valid mac1, at about perSecond until the test ends; the
// counter says how many went.
func floodInitiations(t *testing.T, srv *testServer, laddr string, perSecond int) *atomic.Int64 {
	pc, err := net.ListenPacket("udp", laddr+":0")
	if err != nil {
		t.Fatal(err)
	}
	to := net.UDPAddrFromAddrPort(srv.addr)
	var sent atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	t.Cleanup(func() { close(stop); <-done; pc.Close() })
	go func() {
		defer close(done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		msg := make([]byte, initSize)
		start := time.Now()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			// Catch up with the rate: ticks come late on a busy machine.
			for sent.Load() < int64(time.Since(start).Seconds()*float64(perSecond)) {
				rand.Read(msg)
				msg[0], msg[1], msg[2], msg[3] = 1, 0, 0, 0
				mac, _ := blake2s.New128(srv.inits.mac1Key[:])
				mac.Write(msg[:initMAC1])
				mac.Sum(msg[:initMAC1])
				clear(msg[initMAC1+16:]) // no mac2
				if _, err := pc.WriteTo(msg, to); err != nil {
					return
				}
				sent.Add(1)
			}
		}
	}()
	return &sent
}
