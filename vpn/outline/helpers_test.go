package outline

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"golang.org/x/crypto/hkdf"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/usipipo/usipipo/app/egress"
	"github.com/usipipo/usipipo/app/plane"
	"github.com/usipipo/usipipo/store/model"
)

func nowFunc() func() time.Time { return time.Now }

// testServer is a Server on loopback sockets with a permissive egress.
type testServer struct {
	*Server
	addr string
	set  *metrics.Set
}

func newTestServer(t testing.TB, o Options) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", ln.Addr().String())
	if err != nil {
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
	}
	eg, err := egress.New(egress.Options{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, FlowsPerSecond: -1})
	if err != nil {
		t.Fatal(err)
	}
	o.Listener, o.PacketConn, o.Egress = ln, pc, eg
	if o.Metrics == nil {
		o.Metrics = metrics.NewSet()
	}
	if o.HandshakeTimeout == 0 {
		o.HandshakeTimeout = 2 * time.Second
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &testServer{Server: s, addr: ln.Addr().String(), set: o.Metrics}
}

func (s *testServer) udpAddr() string { return s.o.PacketConn.LocalAddr().String() }

// metric reads one counter of the server's set.
func (s *testServer) metric(name string) uint64 { return s.set.GetOrCreateCounter(name).Get() }

func cred(t testing.TB, id, method, password string, l model.Limits) plane.Credential {
	b, err := Secret{Method: method, Password: password}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return plane.Credential{ID: id, Version: 1, Type: model.Outline, Secret: b, Limits: l, Budget: plane.NoBudget}
}

// clientConn is a minimal Shadowsocks client over a TCP connection.
type clientConn struct {
	net.Conn
	c *Cipher
	w *StreamWriter
	r *StreamReader
}

func dialClient(t testing.TB, addr string, c *Cipher, target string, first []byte) *clientConn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return newClientConn(t, conn, c, target, first)
}

func newClientConn(t testing.TB, conn net.Conn, c *Cipher, target string, first []byte) *clientConn {
	salt := make([]byte, c.SaltSize())
	rand.Read(salt)
	w, err := NewStreamWriter(conn, c, salt)
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort(target)
	if _, err := w.Write(append(AppendAddr(nil, Addr{IP: ap}), first...)); err != nil {
		t.Fatal(err)
	}
	return &clientConn{Conn: conn, c: c, w: w}
}

func (cc *clientConn) Write(p []byte) (int, error) { return cc.w.Write(p) }

func (cc *clientConn) Read(p []byte) (int, error) {
	if cc.r == nil {
		r, err := NewStreamReader(cc.Conn, cc.c)
		if err != nil {
			return 0, err
		}
		cc.r = r
	}
	return cc.r.Read(p)
}

// echoServer echoes TCP on loopback and counts accepted connections.
func echoServer(t testing.TB) (string, *sync.WaitGroup) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { defer c.Close(); io.Copy(c, c) })
		}
	})
	return ln.Addr().String(), &wg
}

// udpEcho echoes datagrams on loopback.
func udpEcho(t testing.TB) string {
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
	return pc.LocalAddr().String()
}

func echoOnce(t testing.TB, cc *clientConn, msg []byte) {
	t.Helper()
	cc.SetDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(cc, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo: %v (%d bytes)", err, len(got))
	}
}

func mustAP(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

var testNow = time.Now()

// hkdfSubkey is the subkey by golang.org/x/crypto/hkdf, the reference.
func hkdfSubkey(t testing.TB, c *Cipher, salt []byte) []byte {
	out := make([]byte, len(c.key))
	if _, err := io.ReadFull(hkdf.New(sha1.New, c.key, salt, []byte("ss-subkey")), out); err != nil {
		t.Fatal(err)
	}
	return out
}
