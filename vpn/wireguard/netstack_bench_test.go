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
// re-dialled to a source on 127.0.0.1), through wireguard-go's stock
// tun/netstack as the server (sending from a listener in its own stack, no
// forwarding at all: the same-run baseline), and through stock wireguard-go
// with a kernel TUN in a namespace of its own sending from its kernel's TCP
// (tunPeer: 64 KiB TSO segments read whole, the best-fed the client can be,
// so its figures are the client's ceiling). The three take turns, 32 MiB at
// a time on a fresh connection, so that a busy machine slows all alike.
// Besides the rates it reports CPU time per MiB of the server (this
// process, whose other servers idle meanwhile, plus the TUN server's
// wireguard-go for tun-*) and of the client's wireguard-go. This process
// also runs the client's reader, so each server figure carries it alike.
//
// Why the client cost as much as the server (01:50 UTC: client 15.6 ms of
// CPU per MiB, server 14.0). Counting the client's packets per MiB (ip -s
// link and /proc/net/snmp in its namespace), perf on its wireguard-go and
// on the host's net_dev_xmit showed three faults on our side, all fixed:
//
//   - Every UDP GSO message of up to 46 datagrams of 1424 bytes (65504, under
//     the 65507-byte UDP limit) is at least 65546 bytes with its IP, UDP and
//     Ethernet headers: over the veth's 64 KiB gso_max_size, so the kernel
//     cut each into single datagrams in software (perf: 1466-byte skbs
//     under sendmmsg). The client read ~600 datagrams per MiB where ~50
//     messages had been sent. The bind now caps a message at 64000 bytes
//     (gso_linux.go; TestBindSendWholeOverVeth).
//   - gVisor's software GSO copies the large segment's flags into every
//     piece, so every segment left with PSH, which stops wireguard-go's tun
//     GRO, and the endpoint got one or two segments per Read. The endpoint
//     now claims host GSO and cuts TCP's 64 KiB packets itself while copying
//     them out (netstack/segment.go): ~37 segments per Read.
//   - gVisor sends in bursts of what each ACK opens (~20 segments), each
//     ending short and with its own timestamps, where the kernel's TSO
//     deferral sends ~64 KiB at once; the client then wrote and acknowledged
//     one TUN segment per burst (41 per MiB against 22 fed by kernel TCP) at
//     ~30% more CPU. The endpoint re-packs a Read's run of one flow into
//     full segments under its newest header (netstack/join.go).
//
// Per MiB the client now reads 24 UDP messages, writes 23 segments to its
// TUN and sends 16 ACKs; fed by kernel TCP (the tun contender) 33, 22, 14.
//
// Where the server's time goes: make bench profiles BenchmarkKernelClient
// each run and BENCH.md lists the shares ("Where the WireGuard netstack
// server's time goes"). On a quiet machine: ChaCha20-Poly1305 ~19%,
// relaying the stream from the loopback socket into gVisor ~19%, cutting,
// re-packing and copying segments out of gVisor ~10% (TCP checksums 5% of
// it), UDP sendmmsg ~10%, scheduling ~7%, zeroing new buffers ~5%, the
// client's ACKs ~5%; the benchmark's own source and reader ~13%.
//
// The ceiling. Measured at 02:59 UTC, load ~6 (other builds running), 320
// MiB per side: usipipo 0.65 Gbit/s, the TUN ceiling 0.65, stock netstack
// 0.24 (ratio 2.69). Client wireguard-go per MiB: 8.0 ms fed by usipipo, 7.8
// by the ceiling, 15.6 by stock netstack; server per MiB: usipipo 7.8 ms,
// the ceiling 9.9 (wireguard-go + kernel TCP), stock netstack 26.5. So the
// client costs about the same however well it is fed (~8 ms per MiB), and
// with our ~7.8 the pair needs ~16 ms of CPU per MiB: 2 cores carry at most
// ~1.05 Gbit/s, and only when nothing else runs (BenchmarkKernelClient,
// the same path without turns, reached 1.005 Gbit/s at a quieter moment).
// On a busy machine the rate is the share of the 2 cores the pair gets;
// usipipo matches the ceiling's rate with less server CPU per MiB than
// wireguard-go with kernel TCP.
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

	tp := newTunPeer(b, k, cred.Public, sec)

	var ours, theirs, tun turn
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(32, b.N-done)
		ours.add(k, 0, func() time.Duration { return k.transfer(b, sec, ourPub, ourEP, ourSrc, n) })
		theirs.add(k, 0, func() time.Duration { return k.transfer(b, stockSecret, stockPub, stockEP, stockSrc, n) })
		tun.add(k, tp.pid, func() time.Duration { return k.transfer(b, sec, tp.pub, tp.ep, tp.src, n) })
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
	b.ReportMetric(gbit(tun.wall), "tun-Gbit/s")
	b.ReportMetric(float64(tun.server.Microseconds())/mib, "tun-server-cpu-µs/MiB")
	b.ReportMetric(float64(tun.client.Microseconds())/mib, "tun-client-cpu-µs/MiB")
}

// turn sums one side's transfers: wall time, the server's CPU time (this
// process's, plus that of the server process pid if not 0) and the client
// process's.
type turn struct{ wall, server, client time.Duration }

func (t *turn) add(k *kernelClient, pid int, transfer func() time.Duration) {
	s0, c0 := selfCPU(), procCPU(k.pid)
	var p0 time.Duration
	if pid != 0 {
		p0 = procCPU(pid)
	}
	t.wall += transfer()
	t.server += selfCPU() - s0
	if pid != 0 {
		t.server += procCPU(pid) - p0
	}
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
