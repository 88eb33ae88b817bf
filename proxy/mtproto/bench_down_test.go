package mtproto

import (
	"context"
	"crypto/rand"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app/plane"
	"github.com/usipipo/usipipo/proxy/mtproto/wire"
)

// startSource is a server that, per connection, first reads skip bytes
// (a DC reads our init) and then writes random bytes until the connection
// breaks: the data centre of a download.
func startSource(b testing.TB, skip int) string {
	ln := listen(b)
	chunk := make([]byte, 64<<10)
	rand.Read(chunk)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if skip > 0 {
					if _, err := io.ReadFull(c, make([]byte, skip)); err != nil {
						return
					}
				}
				for {
					if _, err := c.Write(chunk); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// BenchmarkRelayDown: source (DC) → relay → client throughput, the
// direction fast mode passes through: our relay, normal and fast, dd and ee,
// against a plain io.Copy relay and a relay doing only the AES-CTR work,
// same run. The client counts bytes without decrypting them.
func BenchmarkRelayDown(b *testing.B) {
	for _, kind := range []string{"plain", "aes-ctr", "mtproto-dd", "mtproto-dd-fast", "mtproto-ee", "mtproto-ee-fast"} {
		b.Run(kind, func(b *testing.B) {
			var c net.Conn
			switch kind {
			case "plain", "aes-ctr":
				addr := baselineRelay(b, startSource(b, 0), kind == "aes-ctr")
				var err error
				if c, err = net.Dial("tcp", addr); err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { c.Close() })
			default:
				fast := kind == "mtproto-dd-fast" || kind == "mtproto-ee-fast"
				s := startProxy(b, Options{DCs: map[int]string{2: startSource(b, wire.InitLen)}, IdleTimeout: time.Minute,
					CloakDomain: "cloak.example", FastMode: fast})
				key := randKey(b)
				s.Apply(context.Background(), []plane.Credential{cred("u", key)})
				mode := "dd"
				if kind == "mtproto-ee" || kind == "mtproto-ee-fast" {
					mode = "ee"
				}
				g, err := dialGotd(b, s.Addr().String(), mode, key, 2)
				if err != nil {
					b.Fatal(err)
				}
				g.rec.Conn.SetDeadline(time.Time{})
				c = g.rec.Conn // the socket itself: no client-side decryption
			}
			buf := make([]byte, 64<<10)
			b.SetBytes(int64(len(buf)))
			b.ResetTimer()
			cpu := cpuTime()
			for range b.N {
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(b.N)*float64(len(buf))*8/1e9/b.Elapsed().Seconds(), "Gbit/s")
		})
	}
}

// cpuTime is the CPU time this process has used (user and system, every
// thread): unlike wall time it does not count the time other processes on
// a shared machine held the cores. It covers the source, the relay and the
// client alike, all in this process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// startEcho echoes each connection (after reading skip bytes, as a DC
// reads our init), for the connection-rate benchmark.
func startEcho(b testing.TB, skip int) string {
	ln := listen(b)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if skip > 0 {
					if _, err := io.ReadFull(c, make([]byte, skip)); err != nil {
						return
					}
				}
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// BenchmarkConnect: connections per second through the proxy (dial,
// handshake, one 64-byte round trip to the DC, close), dd and ee, against
// a plain io.Copy relay doing the same dial, round trip and close, same
// run. The client's own obfuscation work (gotd's) is included.
func BenchmarkConnect(b *testing.B) {
	for _, kind := range []string{"plain", "mtproto-dd", "mtproto-ee"} {
		b.Run(kind, func(b *testing.B) {
			msg := make([]byte, 64)
			var once func() error
			if kind == "plain" {
				addr := baselineRelay(b, startEcho(b, 0), false)
				once = func() error {
					c, err := net.Dial("tcp", addr)
					if err != nil {
						return err
					}
					defer c.Close()
					if _, err := c.Write(msg); err != nil {
						return err
					}
					_, err = io.ReadFull(c, make([]byte, len(msg)))
					return err
				}
			} else {
				s := startProxy(b, Options{DCs: map[int]string{2: startEcho(b, wire.InitLen)}, CloakDomain: "cloak.example",
					FailuresPerMinute: 1 << 30, CertSize: 2048})
				key := randKey(b)
				s.Apply(context.Background(), []plane.Credential{cred("u", key)})
				mode := kind[len("mtproto-"):]
				once = func() error {
					g, err := dialGotd(b, s.Addr().String(), mode, key, 2)
					if err != nil {
						return err
					}
					defer g.rec.Conn.Close()
					if _, err := g.Write(msg); err != nil {
						return err
					}
					_, err = io.ReadFull(g, make([]byte, len(msg)))
					return err
				}
			}
			b.ResetTimer()
			cpu := cpuTime()
			for range b.N {
				if err := once(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "conns/s")
		})
	}
}
