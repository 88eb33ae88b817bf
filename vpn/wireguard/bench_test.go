package wireguard

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	wgnetstack "golang.zx2c4.com/wireguard/tun/netstack"

	"github.com/usipipo/usipipo/app/plane"
)

// startSource serves an endless stream to every connection on 127.0.0.1.
func startSource(b testing.TB) netip.AddrPort {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go serveStream(ln)
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

func serveStream(ln net.Listener) {
	buf := make([]byte, 64<<10)
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			for {
				if _, err := c.Write(buf); err != nil {
					return
				}
			}
		}()
	}
}

func drain(b *testing.B, c net.Conn) {
	b.SetBytes(1 << 20)
	b.ResetTimer()
	if _, err := io.CopyN(io.Discard, c, int64(b.N)<<20); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)*8*(1<<20)/b.Elapsed().Seconds()/1e9, "Gbit/s")
}

// BenchmarkTCPDownload is bulk TCP from the host through the tunnel to a
// stock wireguard-go netstack client over loopback UDP. usipipo is this
// package's server (forwarded and re-dialled); stock is wireguard-go's own
// tun/netstack as the server, sending from a listener in its stack (no
// forwarding at all): the same-run baseline.
func BenchmarkTCPDownload(b *testing.B) {
	b.Run("usipipo", func(b *testing.B) {
		srv := newTestServer(b, loopback, Options{})
		p := newTestPeer(b, srv, "bench", 0)
		if err := srv.Apply(context.Background(), []plane.Credential{p.cred}); err != nil {
			b.Fatal(err)
		}
		c, err := p.net.DialContextTCPAddrPort(context.Background(), viaTest(startSource(b)))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		drain(b, c)
	})
	b.Run("stock", func(b *testing.B) {
		tnet, pub, psk, ep := stockServer(b)
		ln, err := tnet.ListenTCPAddrPort(netip.MustParseAddrPort("10.66.0.1:5001"))
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		go serveStream(ln)
		cnet := stockClient(b, pub, psk, ep)
		c, err := cnet.DialContextTCPAddrPort(context.Background(), netip.MustParseAddrPort("10.66.0.1:5001"))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		drain(b, c)
	})
}

// BenchmarkTCPConnect is the connection set-up rate through the server: each
// op opens a TCP connection through the tunnel, reads its first bytes, and
// closes it.
func BenchmarkTCPConnect(b *testing.B) {
	srv := newTestServer(b, loopback, Options{})
	p := newTestPeer(b, srv, "bench", 0)
	if err := srv.Apply(context.Background(), []plane.Credential{p.cred}); err != nil {
		b.Fatal(err)
	}
	dst := viaTest(startGreeter(b))
	buf := make([]byte, 1)
	b.ResetTimer()
	for b.Loop() {
		c, err := p.net.DialContextTCPAddrPort(context.Background(), dst)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "conns/s")
}

// stockServer is wireguard-go with its stock tun/netstack on 127.0.0.1.
func stockServer(b *testing.B) (*wgnetstack.Net, string, []byte, string) {
	priv, _ := ecdh.X25519().GenerateKey(rand.Reader)
	tdev, tnet, err := wgnetstack.CreateNetTUN([]netip.Addr{netip.MustParseAddr("10.66.0.1")}, nil, 1420)
	if err != nil {
		b.Fatal(err)
	}
	cred, sec := newCred(b, "c", 0)
	dev := device.NewDevice(drainOnClose(tdev), conn.NewStdNetBind(), device.NewLogger(device.LogLevelSilent, ""))
	b.Cleanup(dev.Close)
	pubHex := hexKey(b, cred.Public)
	if err := dev.IpcSet(fmt.Sprintf("private_key=%x\nlisten_port=0\npublic_key=%s\npreshared_key=%x\nallowed_ip=10.66.0.2/32\n",
		priv.Bytes(), pubHex, sec.PSK)); err != nil {
		b.Fatal(err)
	}
	if err := dev.Up(); err != nil {
		b.Fatal(err)
	}
	get, _ := dev.IpcGet()
	port := ""
	for _, l := range strings.Split(get, "\n") {
		if v, ok := strings.CutPrefix(l, "listen_port="); ok {
			port = v
		}
	}
	stockSecret = sec
	return tnet, hex.EncodeToString(priv.PublicKey().Bytes()), sec.PSK, "127.0.0.1:" + port
}

// stockSecret is the client's key of the stock benchmark (set by stockServer).
var stockSecret Secret

func stockClient(b *testing.B, serverPubHex string, psk []byte, endpoint string) *wgnetstack.Net {
	tdev, tnet, err := wgnetstack.CreateNetTUN([]netip.Addr{netip.MustParseAddr("10.66.0.2")}, nil, 1420)
	if err != nil {
		b.Fatal(err)
	}
	dev := device.NewDevice(drainOnClose(tdev), conn.NewStdNetBind(), device.NewLogger(device.LogLevelSilent, ""))
	b.Cleanup(dev.Close)
	if err := dev.IpcSet(fmt.Sprintf("private_key=%x\npublic_key=%s\npreshared_key=%x\nendpoint=%s\nallowed_ip=0.0.0.0/0\n",
		stockSecret.Private, serverPubHex, psk, endpoint)); err != nil {
		b.Fatal(err)
	}
	if err := dev.Up(); err != nil {
		b.Fatal(err)
	}
	return tnet
}

func hexKey(b testing.TB, pub string) string {
	np, err := newPeer(plane.Credential{ID: "x", Public: pub, Secret: mustSecret(b), AddrV4: "10.66.0.9"})
	if err != nil {
		b.Fatal(err)
	}
	return np.keyHex
}

func mustSecret(b testing.TB) []byte {
	s, _, _ := NewSecret(rand.Reader)
	out, _ := s.Marshal()
	return out
}

// BenchmarkInstall10k installs 10,000 peers on a running server in one
// Apply, then removes 1,000 of them and adds 1,000 others in one Apply while
// a peer downloads through the tunnel; it reports the time per peer, the
// heap and goroutine stacks the peers hold, and the resident memory they add.
// "parked" is the default (peers without a handshake wait off the device,
// lazy.go); "on-device" keeps every peer on wireguard-go's device.
//
// Where the memory goes (heap profile of 10,000 installed peers, about
// 32 KiB of heap each): wireguard-go's per-peer inbound and outbound queues
// (channels of 1,024 elements, 9 KiB each), the batch slices of its
// per-peer sender and receiver goroutines (3 KiB each at a batch of 128), its
// peer, handshake and timer structures (~3 KiB); this package's own peer
// record, limiters and tables are ~2 KiB. The two goroutines per peer add
// their stacks (4 KiB each here) outside the heap: ~36 KB resident per
// peer. All but ~2 KiB is fixed by wireguard-go for as long as a peer is on
// the device, hence parking: a parked peer costs ~1.5 KiB of heap (~2.3 KB
// resident) and installs in a fraction of the time (no X25519
// precomputation, no queues, no goroutines until its first handshake).
func BenchmarkInstall10k(b *testing.B) {
	creds := make([]plane.Credential, 11000)
	for i := range creds {
		creds[i], _ = newCred(b, "k"+strconv.Itoa(i), i)
	}
	for _, mode := range []struct {
		name string
		park time.Duration
	}{{"parked", 0}, {"on-device", -1}} {
		b.Run(mode.name, func(b *testing.B) { install10k(b, creds, mode.park) })
	}
}

func install10k(b *testing.B, creds []plane.Credential, park time.Duration) {
	for b.Loop() {
		srv := newTestServer(b, loopback, Options{Interval: time.Hour, ParkAfter: park})
		traffic := newTestPeer(b, srv, "traffic", 11001)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		rss0 := residentBytes()
		start := time.Now()
		if err := srv.Apply(context.Background(), append(creds[:10000:10000], traffic.cred)); err != nil {
			b.Fatal(err)
		}
		install := time.Since(start)
		runtime.GC()
		runtime.ReadMemStats(&after)
		rss1 := residentBytes()

		c, err := traffic.net.DialContextTCPAddrPort(context.Background(), viaTest(startSource(b)))
		if err != nil {
			b.Fatal(err)
		}
		flowed := make(chan int64, 1)
		go func() { n, _ := io.Copy(io.Discard, c); flowed <- n }()
		time.Sleep(200 * time.Millisecond)
		start = time.Now()
		if err := srv.Apply(context.Background(), append(creds[1000:11000:11000], traffic.cred)); err != nil {
			b.Fatal(err)
		}
		churn := time.Since(start)
		time.Sleep(200 * time.Millisecond)
		c.Close()
		if n := <-flowed; n == 0 {
			b.Fatal("no traffic flowed during the churn")
		}
		b.ReportMetric(float64(install.Microseconds())/10000, "µs/peer-install")
		b.ReportMetric(float64(churn.Microseconds())/2000, "µs/peer-churn")
		b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/10000, "heapB/peer")
		b.ReportMetric(float64(after.StackInuse-before.StackInuse)/10000, "stackB/peer")
		b.ReportMetric(float64(rss1-rss0)/10000, "rssB/peer")
		srv.Close()
	}
}

// residentBytes is this process's resident set (VmRSS), 0 where unknown.
func residentBytes() int64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// startGreeter writes one byte to every connection and waits for its end.
func startGreeter(b testing.TB) netip.AddrPort {
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
				c.Write([]byte("x"))
				io.Copy(io.Discard, c)
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).AddrPort()
}
