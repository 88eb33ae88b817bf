package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// share is one row of "where the time goes": the functions whose inclusive
// (cum) time it sums, none calling another.
type share struct {
	what string
	fns  []string
}

// netstackShares are the parts of the netstack server's CPU profile
// (BenchmarkKernelClient/usipipo-netstack) BENCH.md shows, as `pprof -top
// -cum` names them.
var netstackShares = []share{
	{"relaying each flow from its host socket into gVisor (the socket read, gVisor's TCP write)", []string{"github.com/usipipo/usipipo/vpn/wireguard.pipe"}},
	{"wireguard-go's encryption workers", []string{"golang.zx2c4.com/wireguard/device.(*Device).RoutineEncryption"}},
	{"— of which ChaCha20-Poly1305", []string{"golang.org/x/crypto/chacha20poly1305.chacha20Poly1305Seal"}},
	{"handing wireguard-go its packets: cutting, re-packing and copying TCP segments out of gVisor", []string{"github.com/usipipo/usipipo/vpn/wireguard/netstack.(*Endpoint).ReadBatch"}},
	{"— of which TCP checksums", []string{"gvisor.dev/gvisor/pkg/tcpip/checksum.Checksum"}},
	{"sending the datagrams: UDP sendmmsg with segmentation offload", []string{"github.com/usipipo/usipipo/vpn/wireguard.(*socketBind).Send"}},
	{"the client's ACKs: reading, decrypting, and gVisor's receive path", []string{
		"golang.zx2c4.com/wireguard/device.(*Device).RoutineReceiveIncoming",
		"golang.zx2c4.com/wireguard/device.(*Device).RoutineDecryption",
		"golang.zx2c4.com/wireguard/device.(*Peer).RoutineSequentialReceiver"}},
	{"zeroing new buffers (gVisor's chunks, wireguard-go's pools)", []string{"runtime.memclrNoHeapPointers"}},
	{"Go's scheduler", []string{"runtime.schedule"}},
	{"the benchmark itself: the source it relays from, the client's reader (not the server)", []string{
		"github.com/usipipo/usipipo/vpn/wireguard.serveStream.func1", "github.com/usipipo/usipipo/vpn/wireguard.drain"}},
}

// cumShares parses `go tool pprof -top -cum` output: each function's cum%
// and the profile's header line ("Duration: …, Total samples = …").
func cumShares(r io.Reader) (map[string]float64, string) {
	cum := map[string]float64{}
	header := ""
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		t := sc.Text()
		if strings.HasPrefix(t, "Duration:") {
			header = t
			continue
		}
		f := strings.Fields(t)
		if len(f) < 6 || !strings.HasSuffix(f[4], "%") {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSuffix(f[4], "%"), 64)
		if err != nil {
			continue
		}
		cum[strings.TrimSuffix(strings.Join(f[5:], " "), " (inline)")] = v
	}
	return cum, header
}

// writeProfile adds "where the time goes" from the pprof listing at path,
// if make bench wrote one.
func writeProfile(w io.Writer, path string) error {
	if path == "" {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("profile listing: %w", err)
	}
	defer f.Close()
	cum, header := cumShares(f)
	fmt.Fprintf(w, "\n## Where the WireGuard netstack server's time goes\n\n"+
		"CPU profile of `BenchmarkKernelClient/usipipo-netstack` (bulk download to a kernel-TCP client; %s). "+
		"Inclusive shares of all samples of the process, which also runs the benchmark's source and reader; "+
		"the client's wireguard-go runs apart.\n\n| part | share |\n|---|---|\n", header)
	for _, s := range netstackShares {
		total := 0.0
		for _, fn := range s.fns {
			total += cum[fn]
		}
		fmt.Fprintf(w, "| %s | %.1f%% |\n", s.what, total)
	}
	return nil
}
