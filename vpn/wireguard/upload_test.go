package wireguard

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"net"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app/plane"
)

// TestUploadIntact sends 8 MiB from the client through the server (the
// receive path that coalesces segments, GRO) to a sink on 127.0.0.1, which
// answers with the digest of what it got after the client's half-close.
func TestUploadIntact(t *testing.T) {
	srv := newTestServer(t, loopback, Options{})
	p := newTestPeer(t, srv, "up", 0)
	if err := srv.Apply(context.Background(), []plane.Credential{p.cred}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		h := sha256.New()
		io.Copy(h, c)
		c.Write(h.Sum(nil))
	}()
	data := make([]byte, 8<<20)
	rand.Read(data)
	want := sha256.Sum256(data)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := p.net.DialContextTCPAddrPort(ctx, viaTest(ln.Addr().(*net.TCPAddr).AddrPort()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, want[:]) {
		t.Fatalf("digest through the tunnel: %x, %v; want %x", got, err, want)
	}
}
