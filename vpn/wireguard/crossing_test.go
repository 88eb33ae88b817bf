package wireguard

import (
	"context"
	"encoding/hex"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/device"

	"github.com/usipipo/usipipo/app/plane"
)

// TestCrossingHandshakes: a restored peer's client reconnects while the
// server's device starts a handshake of its own (as wireguard-go does when
// a packet waits for the peer). A relay holds both initiations until both
// are out, so they cross for certain; the server drops the client's, the
// client answers the server's, and its page arrives well before the
// client's 5 s retry.
func TestCrossingHandshakes(t *testing.T) {
	srv := newTestServer(t, loopback, Options{})
	web := startHTTP(t)
	p := newTestPeer(t, srv, "x1", 0)
	ctx := context.Background()
	if err := srv.Apply(ctx, []plane.Credential{p.cred}); err != nil {
		t.Fatal(err)
	}
	r := startHoldRelay(t, srv.addr)
	p.connectTo(t, r.addr)
	get := func(d time.Duration) error {
		c, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		_, err := p.httpGet(c, web+"/hello")
		return err
	}
	if err := get(5 * time.Second); err != nil {
		t.Fatalf("through the relay: %v", err)
	}

	r.hold()
	if err := srv.Apply(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := srv.Apply(ctx, []plane.Credential{p.cred}); err != nil {
		t.Fatal(err)
	}
	p.connectTo(t, r.addr)
	got := make(chan error, 1)
	go func() { got <- get(10 * time.Second) }()
	eventually(t, 5*time.Second, "the client's initiation held", func() bool { return r.held(true) > 0 })
	var pk device.NoisePublicKey
	hex.Decode(pk[:], []byte(p.keyHex()))
	if err := srv.dev.LookupPeer(pk).SendHandshakeInitiation(false); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the server's initiation held", func() bool { return r.held(false) > 0 })
	start := time.Now()
	r.release()
	if err := <-got; err != nil {
		t.Fatalf("after crossing handshakes: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("the page took %v after the handshakes crossed: the client waited for its retry", d)
	}
	if n := srv.metric(t, `usipipo_wireguard_knocks_total{outcome="crossing"}`); n != "1" {
		t.Fatalf("crossing initiations dropped: %s, want 1", n)
	}
}

// holdRelay forwards datagrams between one client and a server, or holds
// them (in order, both ways) until release.
type holdRelay struct {
	addr     netip.AddrPort // the client's side
	down, up *net.UDPConn
	server   *net.UDPAddr

	mu      sync.Mutex
	client  *net.UDPAddr
	holding bool
	queued  []heldDatagram
}

type heldDatagram struct {
	toServer bool
	b        []byte
}

func startHoldRelay(t testing.TB, server netip.AddrPort) *holdRelay {
	t.Helper()
	down, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	up, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	r := &holdRelay{addr: down.LocalAddr().(*net.UDPAddr).AddrPort(), down: down, up: up, server: net.UDPAddrFromAddrPort(server)}
	var wg sync.WaitGroup
	wg.Go(func() { r.pump(down, true) })
	wg.Go(func() { r.pump(up, false) })
	t.Cleanup(func() { down.Close(); up.Close(); wg.Wait() })
	return r
}

// pump reads from one side until its socket closes.
func (r *holdRelay) pump(from *net.UDPConn, toServer bool) {
	buf := make([]byte, 1<<16)
	for {
		n, src, err := from.ReadFromUDP(buf)
		if err != nil {
			return
		}
		b := append([]byte(nil), buf[:n]...)
		r.mu.Lock()
		if toServer {
			r.client = src
		}
		if r.holding {
			r.queued = append(r.queued, heldDatagram{toServer, b})
			r.mu.Unlock()
			continue
		}
		r.mu.Unlock()
		r.send(heldDatagram{toServer, b})
	}
}

func (r *holdRelay) send(d heldDatagram) {
	if d.toServer {
		r.up.WriteToUDP(d.b, r.server)
		return
	}
	r.mu.Lock()
	client := r.client
	r.mu.Unlock()
	if client != nil {
		r.down.WriteToUDP(d.b, client)
	}
}

func (r *holdRelay) hold() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.holding = true
}

// held counts the handshake initiations held going one way.
func (r *holdRelay) held(toServer bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, d := range r.queued {
		if d.toServer == toServer && isInitiation(d.b) {
			n++
		}
	}
	return n
}

// release sends what was held, in order, and forwards from then on.
func (r *holdRelay) release() {
	r.mu.Lock()
	q := r.queued
	r.queued, r.holding = nil, false
	r.mu.Unlock()
	for _, d := range q {
		r.send(d)
	}
}
