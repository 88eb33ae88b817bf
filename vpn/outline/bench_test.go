package outline

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"testing"

	"github.com/usipipo/usipipo/app/plane"
	"github.com/usipipo/usipipo/store/model"
)

// sink reads an 8-byte length and then that many bytes, and answers with
// the count: the client knows every byte went through (ss-server does not
// relay a half close, so EOF cannot mark the end). A connection that starts
// with "ping" gets "pong" back at once (the connections/s path).
func sink(b testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var hdr [8]byte
				if _, err := io.ReadFull(c, hdr[:4]); err != nil {
					return
				}
				if string(hdr[:4]) == "ping" {
					c.Write([]byte("pong"))
					return
				}
				if _, err := io.ReadFull(c, hdr[4:]); err != nil {
					return
				}
				n, _ := io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint64(hdr[:])))
				c.Write(binary.BigEndian.AppendUint64(nil, uint64(n)))
			}()
		}
	}()
	return ln.Addr().String()
}

// benchServers starts our server with `keys` keys (the client's key last)
// and, when installed, libev's ss-server, both for method and password "pw".
func benchServers(b *testing.B, method string, keys int) map[string]string {
	s := newTestServer(b, Options{})
	creds := make([]plane.Credential, 0, keys)
	for i := range keys - 1 {
		creds = append(creds, cred(b, fmt.Sprint("other", i), method, fmt.Sprint("other-", i), model.Limits{}))
	}
	s.Apply(context.Background(), append(creds, cred(b, "client", method, "pw", model.Limits{})))
	out := map[string]string{"usipipo": s.addr}
	if _, err := exec.LookPath("ss-server"); err == nil {
		port := freePort(b)
		startLibev(b, "ss-server", "-s", "127.0.0.1", "-p", strconv.Itoa(port), "-k", "pw", "-m", method, "-t", "30")
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		waitListening(b, addr)
		out["ss-server"] = addr
	}
	return out
}

// BenchmarkThroughput moves bytes from a Go client through the server to
// the sink, on one connection; ss-server is the same-run baseline.
func BenchmarkThroughput(b *testing.B) {
	const chunk = 32 << 10
	target := sink(b)
	c, _ := NewCipher(DefaultMethod, "pw")
	servers := benchServers(b, DefaultMethod, 1000)
	for _, name := range []string{"usipipo", "ss-server"} {
		addr, ok := servers[name]
		if !ok {
			continue
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(chunk)
			total := uint64(b.N) * chunk
			cc := dialClient(b, addr, c, target, binary.BigEndian.AppendUint64(nil, total))
			buf := make([]byte, chunk)
			for i := 0; i < b.N; i++ {
				if _, err := cc.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			var got [8]byte
			if _, err := io.ReadFull(cc, got[:]); err != nil || binary.BigEndian.Uint64(got[:]) != total {
				b.Fatalf("sink got %d of %d bytes: %v", binary.BigEndian.Uint64(got[:]), total, err)
			}
			b.ReportMetric(float64(b.N*chunk)*8/b.Elapsed().Seconds()/1e9, "Gbit/s")
		})
	}
}

// BenchmarkConnections is connections per second of returning clients:
// each op connects, sends a request to the sink and reads its answer.
func BenchmarkConnections(b *testing.B) {
	target := sink(b)
	c, _ := NewCipher(DefaultMethod, "pw")
	servers := benchServers(b, DefaultMethod, 1000)
	for _, name := range []string{"usipipo", "ss-server"} {
		addr, ok := servers[name]
		if !ok {
			continue
		}
		b.Run(name, func(b *testing.B) {
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				buf := make([]byte, 4)
				for pb.Next() {
					conn, err := net.Dial("tcp", addr)
					if err != nil {
						b.Error(err)
						return
					}
					cc := newClientConn(b, conn, c, target, []byte("ping"))
					_, err = io.ReadFull(cc, buf)
					conn.Close()
					if err != nil || string(buf) != "pong" {
						b.Errorf("%q %v", buf, err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "conns/s")
		})
	}
}

// socksConnect opens a SOCKS5 CONNECT to target through proxy.
func socksConnect(b testing.TB, proxy, target string) net.Conn {
	c, err := net.Dial("tcp", proxy)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	c.Write([]byte{5, 1, 0})
	r := make([]byte, 2)
	if _, err := io.ReadFull(c, r); err != nil || r[1] != 0 {
		b.Fatalf("socks greeting %v %v", r, err)
	}
	c.Write(append([]byte{5, 1, 0}, AppendAddr(nil, Addr{IP: mustAP(target)})...))
	rep := make([]byte, 10)
	if _, err := io.ReadFull(c, rep); err != nil || rep[1] != 0 {
		b.Fatalf("socks connect %v %v", rep, err)
	}
	return c
}

// BenchmarkLibevLocalThroughput is the path: shadowsocks-libev's
// ss-local (a client we did not write, in its own process) → server →
// sink, for our server and, same run, libev's ss-server.
func BenchmarkLibevLocalThroughput(b *testing.B) {
	needLibev(b, "ss-server")
	const chunk = 32 << 10
	target := sink(b)
	servers := benchServers(b, DefaultMethod, 1000)
	for _, name := range []string{"usipipo", "ss-server"} {
		local := ssLocal(b, servers[name], DefaultMethod, "pw", false)
		b.Run(name, func(b *testing.B) {
			b.SetBytes(chunk)
			total := uint64(b.N) * chunk
			c := socksConnect(b, local, target)
			c.Write(binary.BigEndian.AppendUint64(nil, total))
			buf := make([]byte, chunk)
			for i := 0; i < b.N; i++ {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			var got [8]byte
			if _, err := io.ReadFull(c, got[:]); err != nil || binary.BigEndian.Uint64(got[:]) != total {
				b.Fatalf("sink got %d of %d bytes: %v", binary.BigEndian.Uint64(got[:]), total, err)
			}
			b.ReportMetric(float64(total)*8/b.Elapsed().Seconds()/1e9, "Gbit/s")
		})
	}
}

// BenchmarkLibevLocalConnections is connections/s through ss-local, for
// returning clients (our server has 1,000 keys).
func BenchmarkLibevLocalConnections(b *testing.B) {
	needLibev(b, "ss-server")
	target := sink(b)
	servers := benchServers(b, DefaultMethod, 1000)
	for _, name := range []string{"usipipo", "ss-server"} {
		local := ssLocal(b, servers[name], DefaultMethod, "pw", false)
		b.Run(name, func(b *testing.B) {
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				buf := make([]byte, 4)
				for pb.Next() {
					c, err := net.Dial("tcp", local)
					if err != nil {
						b.Error(err)
						return
					}
					c.Write([]byte{5, 1, 0})
					c.Write(append(append([]byte{5, 1, 0}, AppendAddr(nil, Addr{IP: mustAP(target)})...), "ping"...))
					rep := make([]byte, 12)
					_, err = io.ReadFull(c, rep)
					if err == nil {
						_, err = io.ReadFull(c, buf)
					}
					c.Close()
					if err != nil || string(buf) != "pong" {
						b.Errorf("%q %v", buf, err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "conns/s")
		})
	}
}
