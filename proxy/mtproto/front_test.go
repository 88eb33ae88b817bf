package mtproto

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app/plane"
	"github.com/usipipo/usipipo/proxy/mtproto/wire"
)

func fixture(t *testing.T, opts Options) (*Server, *frontServer, *echoDC, []byte) {
	t.Helper()
	front, dc := startFront(t), startEchoDC(t)
	opts.DCs = map[int]string{2: dc.addr, 10002: dc.addr}
	opts.FrontAddr, opts.CloakDomain = front.addr, "cloak.example"
	s := startProxy(t, opts)
	key := randKey(t)
	if err := s.Apply(context.Background(), []plane.Credential{cred("u", key)}); err != nil {
		t.Fatal(err)
	}
	return s, front, dc, key
}

func TestRelayModes(t *testing.T) {
	s, _, dc, key := fixture(t, Options{})
	for _, mode := range []string{"dd", "ee"} {
		for _, idx := range []int{2, -2, 10002} {
			g, err := dialGotd(t, s.Addr().String(), mode, key, idx)
			if err != nil {
				t.Fatalf("%s dc %d: %v", mode, idx, err)
			}
			big := make([]byte, 100<<10) // several TLS records each way
			for i := range big {
				big[i] = byte(i * 7)
			}
			if err := g.echo(big); err != nil {
				t.Fatalf("%s dc %d: echo: %v", mode, idx, err)
			}
			if md := <-dc.seen; int(int16(md.DC)) != idx || md.Protocol != ddTag {
				t.Fatalf("DC saw %+v, want dc %d", md, idx)
			}
		}
	}
}

func TestFronting(t *testing.T) {
	s, front, _, key := fixture(t, Options{})
	addr := s.Addr().String()

	t.Run("plain TLS client", func(t *testing.T) {
		dialTLSFront(t, addr, "cloak.example")
		front.wait(t, "cloak.example")
	})
	t.Run("other SNI", func(t *testing.T) {
		dialTLSFront(t, addr, "other.example")
		front.wait(t, "other.example")
	})
	t.Run("wrong ee secret", func(t *testing.T) {
		if _, err := dialGotd(t, addr, "ee", randKey(t), 2); err == nil {
			t.Fatal("handshake with a wrong secret succeeded")
		}
		front.wait(t, "cloak.example")
	})
	t.Run("wrong dd secret", func(t *testing.T) {
		g, err := dialGotd(t, addr, "dd", randKey(t), 2)
		if err != nil {
			t.Fatal(err) // obfuscated2 has no answer: the client cannot tell yet
		}
		g.Write([]byte("hello"))
		front.wait(t, "raw")
	})
	t.Run("plain secret refused", func(t *testing.T) {
		g, err := dialGotd(t, addr, "plain", key, 2)
		if err != nil {
			t.Fatal(err)
		}
		g.Write([]byte("hello"))
		front.wait(t, "raw")
	})
	for _, mode := range []string{"ee", "dd"} {
		t.Run("replayed "+mode, func(t *testing.T) {
			g, err := dialGotd(t, addr, mode, key, 2)
			if err != nil {
				t.Fatal(err)
			}
			if err := g.echo([]byte("first")); err != nil {
				t.Fatal(err)
			}
			hello := g.rec.written()
			if mode == "ee" {
				hello = hello[:5+int(hello[3])<<8+int(hello[4])]
			} else {
				hello = hello[:wire.InitLen]
			}
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write(hello)
			if mode == "ee" {
				front.wait(t, "cloak.example")
			} else {
				front.wait(t, "raw")
			}
		})
	}
	t.Run("http", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("GET / HTTP/1.0\r\n\r\n")) // shorter than an init: fronted after the peek timeout
		front.wait(t, "raw")
	})
}

// TestFailureLimit: past its failures a source is not searched; the client
// whose secret it cached still gets in with one check.
func TestFailureLimit(t *testing.T) {
	s, front, _, key := fixture(t, Options{FailuresPerMinute: 2})
	addr := s.Addr().String()
	if g, err := dialGotd(t, addr, "ee", key, 2); err != nil || g.echo([]byte("x")) != nil {
		t.Fatalf("first contact: %v", err)
	}
	for range 3 {
		dialGotd(t, addr, "ee", randKey(t), 2)
		front.wait(t, "cloak.example")
	}
	if g, err := dialGotd(t, addr, "ee", key, 2); err != nil || g.echo([]byte("x")) != nil {
		t.Fatalf("returning client behind the limit: %v", err)
	}
	other := randKey(t)
	s.Apply(context.Background(), []plane.Credential{cred("u", key), cred("v", other)})
	if _, err := dialGotd(t, addr, "ee", other, 2); err == nil {
		t.Fatal("a rate-limited source was searched")
	}
	front.wait(t, "cloak.example")
	_ = time.Second
}
