package wireguard

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app/plane"
)

// TestEgressAndIsolation: a denied range, another peer and the gateway's
// other ports are unreachable, and each refusal is counted; an unchanged
// peer keeps its open flow while another is removed.
func TestEgressAndIsolation(t *testing.T) {
	srv := newTestServer(t, loopback, Options{})
	a := newTestPeer(t, srv, "a", 0)
	b := newTestPeer(t, srv, "b", 1)
	if err := srv.Apply(context.Background(), []plane.Credential{a.cred, b.cred}); err != nil {
		t.Fatal(err)
	}
	web := startHTTP(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := a.httpGet(ctx, web+"/hello"); err != nil {
		t.Fatal(err)
	}
	// 127.0.0.2 is loopback outside the allowed 127.0.0.1/32.
	denied := strings.Replace(web, "192.0.2.1", "192.0.2.2", 1)
	for _, target := range []string{denied, "http://10.66.0.3:80", "http://[fd66::3]:80", "http://10.66.0.1:80"} {
		short, cancel := context.WithTimeout(ctx, 2*time.Second)
		if _, err := a.httpGet(short, target+"/hello"); err == nil {
			t.Errorf("%s reachable through the tunnel", target)
		}
		cancel()
	}
	if v := srv.metric(t, `usipipo_wireguard_refused_flows_total{reason="egress"}`); v != "1" {
		t.Errorf("egress refusals = %s", v)
	}
	if v := srv.metric(t, `usipipo_wireguard_refused_flows_total{reason="peer"}`); v != "3" {
		t.Errorf("peer refusals = %s", v)
	}

	// a's open connection survives b's removal.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			buf := make([]byte, 64)
			for {
				n, err := c.Read(buf)
				if err != nil {
					return
				}
				c.Write(buf[:n])
			}
		}
	}()
	tc, err := a.net.DialContextTCPAddrPort(ctx, viaTest(ln.Addr().(*net.TCPAddr).AddrPort()))
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	before := handshakeOf(t, srv, "a")
	if err := srv.Apply(context.Background(), []plane.Credential{a.cred}); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.Write([]byte("still here")); err != nil {
		t.Fatal(err)
	}
	tc.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 64)
	if n, err := tc.Read(buf); err != nil || string(buf[:n]) != "still here" {
		t.Fatalf("a's flow after b's removal: %q %v", buf[:n], err)
	}
	if after := handshakeOf(t, srv, "a"); !after.Equal(before) {
		t.Fatalf("a re-handshook: %v -> %v", before, after)
	}
	short, cancel2 := context.WithTimeout(ctx, 2*time.Second)
	defer cancel2()
	if _, err := b.httpGet(short, web+"/hello"); err == nil {
		t.Fatal("the removed peer still has access")
	}
}

func handshakeOf(t *testing.T, srv *testServer, id string) time.Time {
	snap, err := srv.Counters(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range snap.Counters {
		if c.ID == id {
			return c.LastSeen
		}
	}
	t.Fatalf("no counter for %s", id)
	return time.Time{}
}

// TestLimits: expiry cuts a peer without an Apply, MaxConns refuses the
// flow past the limit, SpeedBps holds a download to its rate, and
// ThrottleBps replaces a cut when the budget runs out.
func TestLimits(t *testing.T) {
	srv := newTestServer(t, loopback, Options{Interval: 100 * time.Millisecond})
	web := startHTTP(t)
	p := newTestPeer(t, srv, "k", 0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	apply := func(c plane.Credential) {
		t.Helper()
		if err := srv.Apply(ctx, []plane.Credential{c}); err != nil {
			t.Fatal(err)
		}
	}
	flowsClosed := func(what string) {
		t.Helper()
		eventually(t, 2*time.Second, what+" flow closed", func() bool {
			snap, err := srv.Counters(ctx)
			return err == nil && snap.Counters[0].Conns == 0
		})
	}
	// The first download, unlimited, is the same run's baseline: it
	// includes the handshake (a client just started may take a second or
	// more to send it on a busy machine), and on a busy machine the race
	// detector's pipeline may itself run slower than the limit.
	c := p.cred
	apply(c)
	start := time.Now()
	if body, err := p.httpGet(ctx, web+"/bytes?n=786432"); err != nil || len(body) != 786432 {
		t.Fatalf("unlimited download: %d bytes, %v", len(body), err)
	}
	base := time.Since(start)
	flowsClosed("first download's")

	c.Limits.SpeedBps = 256 << 10
	c.Limits.MaxConns = 1
	apply(c)
	start = time.Now()
	body, err := p.httpGet(ctx, web+"/bytes?n=786432")
	if err != nil || len(body) != 786432 {
		t.Fatalf("download: %d bytes, %v", len(body), err)
	}
	// 768 KiB at 256 KiB/s with a 256 KiB burst takes at least 2 s, and
	// not much longer than that plus what the same bytes took unlimited.
	d := time.Since(start)
	if d < 1800*time.Millisecond || d > 3*time.Second+3*base {
		t.Fatalf("768 KiB at 256 KiB/s took %v (unlimited: %v)", d, base)
	}
	t.Logf("768 KiB at 256 KiB/s took %v; unlimited, with the handshake, %v", d.Round(time.Millisecond), base.Round(time.Millisecond))

	// One connection open: the second is refused. The download's flow
	// ends a moment after the client saw its end.
	flowsClosed("the limited download's")
	tc, err := p.net.DialContextTCPAddrPort(ctx, mustAddrPort(t, web))
	if err != nil {
		t.Fatal(err)
	}
	short, cancel2 := context.WithTimeout(ctx, 2*time.Second)
	if _, err := p.httpGet(short, web+"/hello"); err == nil {
		t.Fatal("a second connection passed MaxConns 1")
	}
	cancel2()
	tc.Close()
	if v := srv.metric(t, `usipipo_wireguard_refused_flows_total{reason="max_conns"}`); v == "0" {
		t.Fatal("max_conns refusal not counted")
	}

	// Throttle after the cap: still served, at the throttle speed.
	snap, _ := srv.Counters(ctx)
	c.Limits = limitsThrottle(64 << 10)
	// Already 1 byte over: no traffic needs to come after the snapshot.
	c.Mark, c.MarkEpoch, c.Budget = snap.Counters[0].Rx+snap.Counters[0].Tx-1, snap.Epoch, 1
	if err := srv.Apply(ctx, []plane.Credential{c}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "throttled", func() bool { srv.mu.Lock(); defer srv.mu.Unlock(); return srv.peers["k"].state == throttled })
	start = time.Now()
	if body, err := p.httpGet(ctx, web+"/bytes?n=196608"); err != nil || len(body) != 196608 {
		t.Fatalf("throttled download: %v", err)
	}
	if d := time.Since(start); d < 1800*time.Millisecond {
		t.Fatalf("192 KiB at 64 KiB/s took %v", d)
	}

	// Expiry: cut at ExpiresAt by the server's own clock, no Apply.
	c.Budget, c.Limits = plane.NoBudget, limitsExpiring(time.Now().Add(500*time.Millisecond))
	if err := srv.Apply(ctx, []plane.Credential{c}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "expiry cut", func() bool { return !strings.Contains(ipcGet(t, srv), p.keyHex()) })
	short, cancel3 := context.WithTimeout(ctx, 2*time.Second)
	defer cancel3()
	if _, err := p.httpGet(short, web+"/hello"); err == nil {
		t.Fatal("an expired peer is served")
	}
}

func mustAddrPort(t *testing.T, url string) netip.AddrPort {
	ap, err := netip.ParseAddrPort(strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	return ap
}
