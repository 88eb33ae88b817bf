package egress

import (
	"context"
	"net"
	"net/netip"
	"testing"
)

func BenchmarkCheck(b *testing.B) {
	d := newDialer(b, Options{Allow: prefixes("127.0.0.1/32"), Deny: prefixes("8.8.4.0/24", "2001:4860::/32")})
	for _, bc := range []struct{ name, addr string }{
		{"public4", "1.1.1.1:443"},
		{"public6", "[2606:4700::1111]:443"},
		{"mapped", "[::ffff:1.1.1.1]:443"},
		{"private", "10.0.0.1:443"},
	} {
		ap := netip.MustParseAddrPort(bc.addr)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				d.Check(ap)
			}
		})
	}
}

func BenchmarkCheckFor(b *testing.B) {
	d := newDialer(b, Options{FlowsPerSecond: -1})
	lim := newDialer(b, Options{FlowsPerSecond: 1e12, FlowBurst: 1 << 30})
	ap := netip.MustParseAddrPort("1.1.1.1:443")
	b.Run("unlimited", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			d.CheckFor("cred", ap)
		}
	})
	b.Run("limited", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			lim.CheckFor("cred", ap)
		}
	})
}

// BenchmarkDial compares a dial through the policy with a plain net.Dialer,
// both to a 127.0.0.1 listener; the difference is the policy's overhead.
func BenchmarkDial(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	addr := ln.Addr().String()
	ctx := context.Background()
	egress := newDialer(b, Options{Allow: allowLoopback})
	var plain net.Dialer
	for _, bc := range []struct {
		name string
		dial func(context.Context, string, string) (net.Conn, error)
	}{
		{"plain", plain.DialContext},
		{"egress", egress.DialContext},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c, err := bc.dial(ctx, "tcp", addr)
				if err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
		})
	}
}
