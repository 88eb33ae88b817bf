package wireguard

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"golang.org/x/net/dns/dnsmessage"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	wgnetstack "golang.zx2c4.com/wireguard/tun/netstack"

	"github.com/usipipo/usipipo/app/egress"
	"github.com/usipipo/usipipo/app/plane"
	"github.com/usipipo/usipipo/store/model"
)

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}

// testNet maps 192.0.2.x (TEST-NET-1, what the client aims at) to
// 127.0.0.x: the stock netstack client drops replies from loopback.
func testNet(a netip.AddrPort) netip.AddrPort {
	if b := a.Addr().As16(); a.Addr().Is4() && b[12] == 192 && b[13] == 0 && b[14] == 2 {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, b[15]}), a.Port())
	}
	return a
}

// viaTest is the address the client dials for a loopback one.
func viaTest(a netip.AddrPort) netip.AddrPort {
	b := a.Addr().As4()
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, b[3]}), a.Port())
}

// testServer is a Server on 127.0.0.1 whose egress allows allow and whose
// resolver is a local DNS server answering names with 127.0.0.1.
type testServer struct {
	*Server
	addr    netip.AddrPort
	metrics *metrics.Set
}

func newTestServer(t testing.TB, allow []netip.Prefix, o Options) *testServer {
	t.Helper()
	return newTestServerOn(t, "127.0.0.1:0", allow, o)
}

// newTestServerOn is newTestServer listening on laddr.
func newTestServerOn(t testing.TB, laddr string, allow []netip.Prefix, o Options) *testServer {
	t.Helper()
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", laddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	ms := metrics.NewSet()
	res := startDNS(t)
	eg, err := egress.New(egress.Options{Allow: allow, FlowsPerSecond: -1, Resolver: res})
	if err != nil {
		t.Fatal(err)
	}
	o.dialDst = testNet
	o.PrivateKey, o.Conn, o.Egress, o.Metrics, o.Resolver = priv.Bytes(), pc, eg, ms, res
	if o.Interval == 0 {
		o.Interval = 200 * time.Millisecond
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &testServer{Server: s, addr: pc.LocalAddr().(*net.UDPAddr).AddrPort(), metrics: ms}
}

func (s *testServer) metric(t testing.TB, name string) string {
	var b strings.Builder
	s.metrics.WritePrometheus(&b)
	for _, line := range strings.Split(b.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	t.Fatalf("metric %s missing in\n%s", name, b.String())
	return ""
}

// testPeer is a credential and a wireguard-go client (stock tun/netstack)
// holding it.
type testPeer struct {
	cred plane.Credential
	sec  Secret
	dev  *device.Device
	net  *wgnetstack.Net
	srv  *testServer
}

func newCred(t testing.TB, id string, n int) (plane.Credential, Secret) {
	sec, pub, err := NewSecret(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := sec.Marshal()
	return plane.Credential{ID: id, Version: 1, Type: model.WireGuard, Secret: b, Public: pub,
		AddrV4: fmt.Sprintf("10.66.%d.%d", n/250, n%250+2), AddrV6: fmt.Sprintf("fd66::%x", n+2), Budget: plane.NoBudget}, sec
}

func newTestPeer(t testing.TB, srv *testServer, id string, n int) *testPeer {
	t.Helper()
	cred, sec := newCred(t, id, n)
	p := &testPeer{cred: cred, sec: sec, srv: srv}
	tdev, tnet, err := wgnetstack.CreateNetTUN(
		[]netip.Addr{netip.MustParseAddr(cred.AddrV4), netip.MustParseAddr(cred.AddrV6)},
		[]netip.Addr{srv.gw4}, 1420)
	if err != nil {
		t.Fatal(err)
	}
	p.net = tdev2net(tnet)
	p.dev = device.NewDevice(drainOnClose(tdev), conn.NewStdNetBind(), device.NewLogger(device.LogLevelSilent, ""))
	t.Cleanup(p.dev.Close)
	if err := p.dev.IpcSet("private_key=" + hex.EncodeToString(sec.Private) + "\n"); err != nil {
		t.Fatal(err)
	}
	p.connect(t)
	if err := p.dev.Up(); err != nil {
		t.Fatal(err)
	}
	return p
}

func tdev2net(n *wgnetstack.Net) *wgnetstack.Net { return n }

// connect (re)installs the server as the client's peer, which starts a new
// handshake: what a client does when it reconnects.
func (p *testPeer) connect(t testing.TB) {
	t.Helper()
	p.connectTo(t, p.srv.addr)
}

// connectTo is connect with the server's endpoint at ep.
func (p *testPeer) connectTo(t testing.TB, ep netip.AddrPort) {
	t.Helper()
	spub, _ := base64.StdEncoding.DecodeString(p.srv.PublicKey())
	cfg := fmt.Sprintf("public_key=%s\nremove=true\npublic_key=%s\npreshared_key=%s\nendpoint=%s\nallowed_ip=0.0.0.0/0\nallowed_ip=::/0\n",
		hex.EncodeToString(spub), hex.EncodeToString(spub), hex.EncodeToString(p.sec.PSK), ep)
	if err := p.dev.IpcSet(cfg); err != nil {
		t.Fatal(err)
	}
}

func (p *testPeer) httpGet(ctx context.Context, url string) (string, error) {
	tr := &http.Transport{DialContext: p.net.DialContext, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// startHTTP serves /hello and /bytes?n=N on 127.0.0.1.
func startHTTP(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello through the tunnel") })
	mux.HandleFunc("/bytes", func(w http.ResponseWriter, r *http.Request) {
		var n int
		fmt.Sscan(r.URL.Query().Get("n"), &n)
		w.Write(make([]byte, n))
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + viaTest(ln.Addr().(*net.TCPAddr).AddrPort()).String()
}

// startUDPEcho echoes datagrams on 127.0.0.1.
func startUDPEcho(t testing.TB) netip.AddrPort {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 65535)
		for {
			n, a, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], a)
		}
	}()
	return viaTest(pc.LocalAddr().(*net.UDPAddr).AddrPort())
}

// startDNS serves A records of 192.0.2.1 for *.test on 127.0.0.1 and returns
// a resolver that asks it.
func startDNS(t testing.TB) *net.Resolver { return startDNSWith(t, [4]byte{192, 0, 2, 1}) }

// startDNSWith is startDNS answering a.
func startDNSWith(t testing.TB, answer [4]byte) *net.Resolver {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, a, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var m dnsmessage.Message
			if m.Unpack(buf[:n]) != nil || len(m.Questions) != 1 {
				continue
			}
			q := m.Questions[0]
			m.Response, m.Authoritative = true, true
			if !strings.HasSuffix(q.Name.String(), ".test.") {
				m.RCode = dnsmessage.RCodeNameError
			} else if q.Type == dnsmessage.TypeA {
				m.Answers = []dnsmessage.Resource{{Header: dnsmessage.ResourceHeader{Name: q.Name, Type: q.Type, Class: q.Class, TTL: 60},
					Body: &dnsmessage.AResource{A: answer}}}
			}
			out, _ := m.Pack()
			pc.WriteTo(out, a)
		}
	}()
	addr := pc.LocalAddr().String()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", addr)
	}}
}

// eventually polls f until it is true or d passes.
func eventually(t testing.TB, d time.Duration, what string, f func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !f() {
		if time.Now().After(end) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func limitsThrottle(bps uint64) model.Limits { return model.Limits{ThrottleBps: bps} }

func limitsExpiring(at time.Time) model.Limits { return model.Limits{ExpiresAt: at} }
