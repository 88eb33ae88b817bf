package mtproto

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app/plane"
	"github.com/usipipo/usipipo/proxy/mtproto/wire"
)

// sink counts what reaches it.
type sink struct {
	addr string
	got  atomic.Int64
}

func startSink(b testing.TB) *sink {
	ln := listen(b)
	s := &sink{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					s.got.Add(int64(n))
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return s
}

// baselineRelay relays each connection to addr; with aes it also runs the
// two AES-256-CTR passes per byte an MTProto relay does.
func baselineRelay(b testing.TB, addr string, aes bool) string {
	ln := listen(b)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				d, err := net.Dial("tcp", addr)
				if err != nil {
					return
				}
				defer d.Close()
				if !aes {
					go io.Copy(c, d)
					io.Copy(d, c)
					return
				}
				go cryptCopy(c, d)
				cryptCopy(d, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func cryptCopy(dst, src net.Conn) {
	key := make([]byte, 32)
	s1, _ := wire.NewCTR(key, key[:16])
	s2, _ := wire.NewCTR(key, key[:16])
	buf := make([]byte, wire.MaxRecordPayload)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p := buf[:n]
			s1.XORKeyStream(p, p)
			s2.XORKeyStream(p, p)
			if _, err := dst.Write(p); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func pump(b *testing.B, c net.Conn, sk *sink, prefix int64) {
	chunk := make([]byte, 64<<10)
	rand.Read(chunk)
	b.SetBytes(int64(len(chunk)))
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	want := prefix + int64(b.N)*int64(len(chunk))
	for sk.got.Load() < want {
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
}

// BenchmarkRelay: client → relay → sink throughput, our dd relay against a
// plain io.Copy relay and a relay doing only the AES-CTR work, same run.
func BenchmarkRelay(b *testing.B) {
	for _, kind := range []string{"plain", "aes-ctr", "mtproto-dd"} {
		b.Run(kind, func(b *testing.B) {
			sk := startSink(b)
			var addr string
			var prefix int64
			var key []byte
			switch kind {
			case "plain":
				addr = baselineRelay(b, sk.addr, false)
			case "aes-ctr":
				addr = baselineRelay(b, sk.addr, true)
			default:
				s := startProxy(b, Options{DCs: map[int]string{2: sk.addr}, IdleTimeout: time.Minute})
				key = randKey(b)
				s.Apply(context.Background(), []plane.Credential{cred("u", key)})
				addr, prefix = s.Addr().String(), wire.InitLen
			}
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			if key != nil {
				c.Write(clientInit(b, key))
			}
			pump(b, c, sk, prefix)
		})
	}
}

// clientInit is a dd client's init for key, DC 2.
func clientInit(b testing.TB, key []byte) []byte {
	g := &captureConn{}
	o := newGotdObfs(g)
	if err := o.Handshake(ddTag, 2, gotdSecret(key)); err != nil {
		b.Fatal(err)
	}
	return g.out
}

func memInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse + m.StackInuse)
}

// BenchmarkSearch: the FakeTLS and dd secret search at 1, 1,000 and 10,000
// secrets; first contact matches the last secret (the worst case), a
// returning client hits its cached secret.
func BenchmarkSearch(b *testing.B) {
	for _, n := range []int{1, 1000, 10000} {
		s := startProxy(b, Options{FailuresPerMinute: 1 << 30})
		creds := make([]plane.Credential, n)
		for i := range creds {
			creds[i] = cred(fmt.Sprint(i), randKey(b))
		}
		s.Apply(context.Background(), creds)
		last := s.secrets.Load().list[n-1].key
		msg := wire.BuildHello("cloak.example", 1500)
		wire.SignHello(msg, wire.HelloRecords(msg, 1<<14), last, time.Now())
		hello, err := wire.ReadClientHello(bytesReader(wire.HelloRecords(msg, 1<<14)))
		if err != nil {
			b.Fatal(err)
		}
		var init [wire.InitLen]byte
		copy(init[:], clientInit(b, last))
		for _, returning := range []bool{false, true} {
			name := map[bool]string{false: "first", true: "returning"}[returning]
			b.Run(fmt.Sprintf("tls/secrets=%d/%s", n, name), func(b *testing.B) {
				for i := range b.N {
					if sec, _ := s.findTLS(hello, srcFor(i, returning)); sec == nil {
						b.Fatal("no match")
					}
				}
			})
			b.Run(fmt.Sprintf("dd/secrets=%d/%s", n, name), func(b *testing.B) {
				for i := range b.N {
					if s.findObfs2(&init, srcFor(i, returning)) == nil {
						b.Fatal("no match")
					}
				}
			})
		}
		s.Close()
	}
}

func srcFor(i int, returning bool) netip.Addr {
	if returning {
		return netip.AddrFrom4([4]byte{10, 0, 0, 1})
	}
	return netip.AddrFrom4([4]byte{11, byte(i >> 16), byte(i >> 8), byte(i)})
}
