package wireguard

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"github.com/usipipo/usipipo/app/plane"
)

// TestEndToEnd drives a stock wireguard-go client through the server: TCP,
// UDP, DNS and ping, then revocation, a data cap and its renewal.
func TestEndToEnd(t *testing.T) {
	srv := newTestServer(t, loopback, Options{})
	web := startHTTP(t)
	echo := startUDPEcho(t)
	p := newTestPeer(t, srv, "k1", 0)
	if err := srv.Apply(context.Background(), []plane.Credential{p.cred}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	body, err := p.httpGet(ctx, web+"/hello")
	if err != nil || body != "hello through the tunnel" {
		t.Fatalf("http through the tunnel: %q, %v", body, err)
	}
	t.Run("udp", func(t *testing.T) { udpEcho(t, p, echo) })
	t.Run("dns", func(t *testing.T) {
		addrs, err := p.net.LookupContextHost(ctx, "www.example.test")
		if err != nil || len(addrs) != 1 || addrs[0] != "192.0.2.1" {
			t.Fatalf("lookup through the tunnel: %v, %v", addrs, err)
		}
		if _, err := p.net.LookupContextHost(ctx, "missing.invalid"); err == nil {
			t.Fatal("a missing name resolved")
		}
		// And by name through the tunnel, as a browser does.
		port := strings.TrimPrefix(web, "http://192.0.2.1")
		if body, err := p.httpGet(ctx, "http://www.example.test"+port+"/hello"); err != nil || body == "" {
			t.Fatalf("http by name: %v", err)
		}
	})
	t.Run("ping", func(t *testing.T) {
		ping(t, p, srv.gw4)
		if t.Failed() {
			st := srv.tdev.Stack().Stats()
			t.Logf("server stack: echo requests %d, replies %d, rate limited %d, IP received %d, dropped %d; server: %s",
				st.ICMP.V4.PacketsReceived.EchoRequest.Value(), st.ICMP.V4.PacketsSent.EchoReply.Value(),
				st.ICMP.V4.PacketsSent.RateLimited.Value(), st.IP.PacketsReceived.Value(), st.IP.InvalidDestinationAddressesReceived.Value(), ipcGet(t, srv))
		}
	})

	snap, err := srv.Counters(ctx)
	if err != nil || len(snap.Counters) != 1 || snap.Counters[0].Rx == 0 || snap.Counters[0].Tx == 0 ||
		snap.Counters[0].Sources != 1 || snap.Counters[0].LastSeen.IsZero() || snap.Epoch != srv.Epoch() {
		t.Fatalf("counters: %+v, %v", snap, err)
	}

	t.Run("budget", func(t *testing.T) { budgetCut(t, srv, p, web, snap) })
	t.Run("revoke", func(t *testing.T) { revoke(t, srv, p, web) })
}

func udpEcho(t *testing.T, p *testPeer, echo netip.AddrPort) {
	c, err := p.net.DialUDPAddrPort(netip.AddrPort{}, echo)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 2000)
	for i := range 5 {
		msg := bytes.Repeat([]byte{byte('a' + i)}, 100*(i+1))
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, err := c.Read(buf)
		if err != nil || !bytes.Equal(buf[:n], msg) {
			t.Fatalf("datagram %d: %v", i, err)
		}
	}
}

// ping sends echo requests to gw, one every half second as ping(8) does
// (ICMP is not retransmitted; a loaded machine may drop one), and wants a
// reply within 5 s.
func ping(t *testing.T, p *testPeer, gw netip.Addr) {
	c, err := p.net.DialPingAddr(netip.Addr{}, gw)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 1500)
	end := time.Now().Add(5 * time.Second)
	for seq := 1; time.Now().Before(end); seq++ {
		req, _ := (&icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: 7, Seq: seq, Data: []byte("usipipo")}}).Marshal(nil)
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, err := c.Read(buf)
		if isTimeout(err) {
			t.Logf("echo request %d unanswered after 500 ms", seq)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		m, err := icmp.ParseMessage(1, buf[:n])
		if err != nil || m.Type != ipv4.ICMPTypeEchoReply || string(m.Body.(*icmp.Echo).Data) != "usipipo" {
			t.Fatalf("echo reply: %+v %v", m, err)
		}
		return
	}
	t.Fatal("no echo reply from the gateway within 5 s")
}

// budgetCut gives the peer 256 KiB more and downloads 4 MiB: the server
// cuts it; a new budget brings it back. The budget is checked every
// Interval, so the download is held to 1 MiB/s: unthrottled, 4 MiB pass in
// less than one interval.
func budgetCut(t *testing.T, srv *testServer, p *testPeer, web string, snap plane.Snapshot) {
	c := p.cred
	c.Mark, c.MarkEpoch, c.Budget = snap.Counters[0].Rx+snap.Counters[0].Tx, snap.Epoch, 256<<10
	c.Limits.SpeedBps = 1 << 20
	if err := srv.Apply(context.Background(), []plane.Credential{c}); err != nil {
		t.Fatal(err)
	}
	// The cut takes the peer off the device while the download runs: its
	// flows are closed, but the resets cannot reach a client no longer on
	// the device, so the client's download just stalls until cancelled.
	// Had the cut not come, the 4 MiB would have arrived within ~4 s.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := p.httpGet(ctx, web+"/bytes?n=4194304")
		got <- err
	}()
	eventually(t, 10*time.Second, "the peer over budget off the device", func() bool { return !strings.Contains(ipcGet(t, srv), p.keyHex()) })
	t.Logf("cut %v into the download", time.Since(start).Round(time.Millisecond))
	cancel()
	if err := <-got; err == nil {
		t.Fatal("4 MiB passed a 256 KiB budget")
	}
	// Renewal: a new budget; the client reconnects.
	c.Budget, c.Limits.SpeedBps = plane.NoBudget, 0
	if err := srv.Apply(context.Background(), []plane.Credential{c}); err != nil {
		t.Fatal(err)
	}
	p.connect(t)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if body, err := p.httpGet(ctx2, web+"/hello"); err != nil || body == "" {
		cg, _ := p.dev.IpcGet()
		t.Fatalf("after renewal: %v\nknocks: crossing %s, not parked %s, source %s, load %s\nserver: %s\nclient: %s", err,
			srv.metric(t, `usipipo_wireguard_knocks_total{outcome="crossing"}`), srv.metric(t, `usipipo_wireguard_knocks_total{outcome="not_parked"}`),
			srv.metric(t, `usipipo_wireguard_knocks_total{outcome="source_limit"}`), srv.metric(t, `usipipo_wireguard_knocks_total{outcome="load_limit"}`),
			ipcGet(t, srv), cg)
	}
	// The device restarted the peer's counts on re-adding it; the plane's do not.
	after, err := srv.Counters(ctx2)
	if err != nil || after.Epoch != snap.Epoch || after.Counters[0].Rx+after.Counters[0].Tx <= c.Mark+256<<10 {
		t.Fatalf("counters went back: %+v then %+v", snap, after)
	}
}

// revoke opens a connection through the tunnel, then applies a set without
// the peer: the host side of the flow closes and new flows fail, within 2s.
func revoke(t *testing.T, srv *testServer, p *testPeer, web string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	tc, err := p.net.DialContextTCPAddrPort(context.Background(), viaTest(ln.Addr().(*net.TCPAddr).AddrPort()))
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	host := <-accepted
	defer host.Close()

	start := time.Now()
	if err := srv.Apply(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	host.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := host.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("the revoked peer's connection is still open: %v", err)
	}
	t.Logf("revocation closed the open flow in %v", time.Since(start).Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := p.httpGet(ctx, web+"/hello"); err == nil {
		t.Fatal("a revoked peer still fetches pages")
	}
	if srv.metric(t, "usipipo_wireguard_peers_installed") != "0" {
		t.Fatal("peers installed after revocation")
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func (p *testPeer) keyHex() string {
	np, _ := newPeer(p.cred)
	return np.keyHex
}

func ipcGet(t *testing.T, srv *testServer) string {
	s, err := srv.dev.IpcGet()
	if err != nil {
		t.Fatal(err)
	}
	return s
}
