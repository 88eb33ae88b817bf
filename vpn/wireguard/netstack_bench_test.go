//go:build linux

package wireguard

import (
	"context"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app/plane"
)

// BenchmarkNetstackMode is bulk TCP download to a wireguard-go client with
// a kernel TUN (kernel TCP) in a network namespace: through this package's
// server in netstack mode (the flow terminated in its gVisor stack and
// re-dialled to a source on 127.0.0.1), and through wireguard-go's stock
// tun/netstack as the server (sending from a listener in its own stack, no
// forwarding at all: the same-run baseline). The two take turns, 32 MiB at
// a time on a fresh connection, so that a busy machine slows both alike.
// Besides the rates it reports CPU time per MiB of this process (the
// servers: the other one idles meanwhile) and of the client's wireguard-go.
//
// Where the time goes (pprof of the server process, KernelClient
// benchmark). Before: ~10 ms of CPU per MiB, of which a third was UDP
// sendmmsg, a sixth gVisor's TCP sender building and writing one 1380-byte
// segment at a time, 15% zeroing the bind's message arrays (allocated on
// every receive and send call), 7% ChaCha20-Poly1305, the rest scheduling
// and copies. Now: the bind reuses its arrays (pooled), the link endpoint
// claims gVisor GSO (GVisorGSOSupported, 64 KiB GSOMaxSize) so TCP sends one
// large segment that gVisor cuts to the MSS in one pass, inbound batches go
// through gVisor's GRO, and the endpoint hands wireguard-go up to 128
// packets per Read, which it encrypts in parallel and sends per peer as UDP
// GSO messages. That is ~7.7 ms per MiB on a quiet moment, split: gVisor's
// TCP sending (GSO split included) ~20%, reading the relayed stream from the
// host socket ~15%, UDP sendmmsg ~11%, copying packets out of gVisor into
// wireguard-go's buffers ~11%, ChaCha20-Poly1305 ~10%, allocation (mostly
// wireguard-go's message buffer pool refilling after GC) ~10%, scheduling
// ~8%. The stock server spends about twice as much CPU per MiB; the client
// (kernel TCP + wireguard-go, ~13 ms per MiB) costs the same in both, so on
// a saturated 2-core machine the rate ratio stays below the CPU ratio.
func BenchmarkNetstackMode(b *testing.B) {
	k := newKernelClient(b)
	srv := newTestServerOn(b, vethHost+":0", loopback, Options{})
	cred, sec := newCred(b, "ns", 0)
	if err := srv.Apply(context.Background(), []plane.Credential{cred}); err != nil {
		b.Fatal(err)
	}
	ourPub, ourEP, ourSrc := hexKey(b, srv.PublicKey()), srv.addr, viaTest(startSource(b))

	tnet, stockPub, _, ep := stockServer(b)
	ln, err := tnet.ListenTCPAddrPort(netip.MustParseAddrPort("10.66.0.1:5001"))
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go serveStream(ln)
	port, _ := strconv.Atoi(strings.TrimPrefix(ep, "127.0.0.1:"))
	stockEP := netip.AddrPortFrom(netip.MustParseAddr(vethHost), uint16(port))
	stockSrc := netip.MustParseAddrPort("10.66.0.1:5001")

	var ours, theirs turn
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(32, b.N-done)
		ours.add(k, func() time.Duration { return k.transfer(b, sec, ourPub, ourEP, ourSrc, n) })
		theirs.add(k, func() time.Duration { return k.transfer(b, stockSecret, stockPub, stockEP, stockSrc, n) })
		done += n
	}
	b.StopTimer()
	mib := float64(b.N)
	gbit := func(d time.Duration) float64 { return mib * 8 * (1 << 20) / d.Seconds() / 1e9 }
	b.ReportMetric(gbit(ours.wall), "usipipo-Gbit/s")
	b.ReportMetric(gbit(theirs.wall), "stock-Gbit/s")
	b.ReportMetric(gbit(ours.wall)/gbit(theirs.wall), "ratio")
	b.ReportMetric(float64(ours.server.Microseconds())/mib, "usipipo-server-cpu-µs/MiB")
	b.ReportMetric(float64(theirs.server.Microseconds())/mib, "stock-server-cpu-µs/MiB")
	b.ReportMetric(float64(ours.client.Microseconds())/mib, "usipipo-client-cpu-µs/MiB")
	b.ReportMetric(float64(theirs.client.Microseconds())/mib, "stock-client-cpu-µs/MiB")
}

// turn sums one side's transfers: wall time, this process's CPU time and
// the client process's.
type turn struct{ wall, server, client time.Duration }

func (t *turn) add(k *kernelClient, transfer func() time.Duration) {
	s0, c0 := selfCPU(), procCPU(k.pid)
	t.wall += transfer()
	t.server += selfCPU() - s0
	t.client += procCPU(k.pid) - c0
}

// selfCPU is this process's user+system time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is another process's user+system time, from /proc/PID/stat
// (clock ticks of 1/100 s, USER_HZ on Linux).
func procCPU(pid int) time.Duration {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(raw)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+2:]
	}
	f := strings.Fields(s)
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * 10 * time.Millisecond
}
