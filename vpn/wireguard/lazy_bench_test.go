//go:build linux

package wireguard

import (
	"crypto/ecdh"
	"crypto/rand"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"golang.org/x/crypto/blake2s"
)

// BenchmarkKnockSieve: what one junk initiation from a source already
// caught sending junk costs the receive path (isJunky, mac2, the reply
// budget), against examining it (the X25519 that recovers its sender),
// which is what every initiation cost while parked peers existed, up to
// the overall budget. Reported: the CPU time of both per initiation, and
// their ratio.
func BenchmarkKnockSieve(b *testing.B) {
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0") // cookie replies leave through it
	if err != nil {
		b.Fatal(err)
	}
	defer pc.Close()
	s := &Server{m: newServerMetrics(metrics.NewSet()), o: Options{Conn: pc}, log: slog.New(slog.DiscardHandler)}
	if s.inits, err = newInitiations(priv.Bytes()); err != nil {
		b.Fatal(err)
	}
	s.sieve = newSieve(s.inits.pub, 0)
	defer s.sieve.close()
	parked := map[[32]byte]struct{}{{1}: {}}
	s.parkedKeys.Store(&parked)
	msg := make([]byte, initSize)
	rand.Read(msg)
	msg[0], msg[1], msg[2], msg[3] = 1, 0, 0, 0
	mac, _ := blake2s.New128(s.inits.mac1Key[:])
	mac.Write(msg[:initMAC1])
	mac.Sum(msg[:initMAC1])
	src := netip.MustParseAddrPort("127.0.0.9:9")
	s.sieve.markJunk(sourceKey(src.Addr()), time.Now())

	// CPU time of this thread, not wall time: the machine is shared.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ResetTimer()
	start := threadCPU()
	for range b.N {
		if s.knock(msg, src) {
			b.Fatal("junk from a junky source passed")
		}
	}
	sieved := threadCPU() - start
	start = threadCPU()
	for range b.N {
		if _, ok := s.inits.initiator(msg); ok {
			b.Fatal("junk decrypted")
		}
	}
	examined := threadCPU() - start
	b.StopTimer()
	b.ReportMetric(float64(sieved.Nanoseconds())/float64(b.N), "sieve-cpu-ns/init")
	b.ReportMetric(float64(examined.Nanoseconds())/float64(b.N), "examine-cpu-ns/init")
	b.ReportMetric(float64(examined)/float64(sieved), "x-cheaper")
}
