package mtproto

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app/egress"
	"github.com/usipipo/usipipo/app/plane"
	"github.com/usipipo/usipipo/store/model"
)

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func loopbackDialer(t testing.TB) DialFunc {
	t.Helper()
	d, err := egress.New(egress.Options{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, FlowsPerSecond: -1})
	if err != nil {
		t.Fatal(err)
	}
	return d.DialFor
}

// startProxy starts a Server on loopback with opts (Listener and Dial
// filled in when unset).
func startProxy(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.Listener == nil {
		opts.Listener = listen(t)
	}
	if opts.Dial == nil {
		opts.Dial = loopbackDialer(t)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func cred(id string, key []byte) plane.Credential {
	return plane.Credential{ID: id, Version: 1, Type: model.MTProto, Secret: key, Budget: plane.NoBudget}
}

func randKey(t testing.TB) []byte {
	t.Helper()
	k, err := NewSecret(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// frontServer is the cloak domain's real TLS site on loopback: it answers
// every TLS connection with its name, and counts them.
type frontServer struct {
	addr string
	hits chan string // one per completed TLS handshake: the SNI seen
}

func startFront(t testing.TB) *frontServer {
	t.Helper()
	cert := selfSigned(t)
	ln := listen(t)
	f := &frontServer{addr: ln.Addr().String(), hits: make(chan string, 100)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go f.serve(c, cert)
		}
	}()
	return f
}

// serve reports the SNI of a ClientHello as soon as it arrives (a replayed
// hello never completes its handshake), or "raw" for bytes that are no hello.
func (f *frontServer) serve(c net.Conn, cert tls.Certificate) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	helloSeen := false
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		helloSeen = true
		f.hits <- h.ServerName
		return nil, nil
	}}
	tc := tls.Server(c, cfg)
	if err := tc.Handshake(); err != nil {
		if !helloSeen {
			f.hits <- "raw"
		}
		return
	}
	io.WriteString(tc, "front site\n")
}

func (f *frontServer) wait(t testing.TB, want string) {
	t.Helper()
	select {
	case got := <-f.hits:
		if got != want {
			t.Fatalf("front saw %q, want %q", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("nothing reached the front server (want %q)", want)
	}
}

// dialTLSFront checks that a plain TLS client with SNI reaches the front
// site through the proxy.
func dialTLSFront(t testing.TB, proxy, sni string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d := tls.Dialer{Config: &tls.Config{ServerName: sni, InsecureSkipVerify: true}}
	c, err := d.DialContext(ctx, "tcp", proxy)
	if err != nil {
		t.Fatalf("TLS through the proxy: %v", err)
	}
	defer c.Close()
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "front site\n" {
		t.Fatalf("front answer %q, %v", b, err)
	}
}

func selfSigned(t testing.TB) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cloak.example"},
		DNSNames: []string{"cloak.example"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
