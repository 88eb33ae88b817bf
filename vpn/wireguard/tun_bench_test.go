//go:build linux

package wireguard

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// BenchmarkTunMode is bulk TCP download from a source behind the server's
// NAT to a wireguard-go client with a kernel TUN (kernel TCP) in another
// namespace: through this package's server in tun mode (metering,
// firewall, accounting), and through stock wireguard-go with a kernel TUN,
// forwarding and a bare masquerade rule (the same-run baseline) in a
// namespace of its own with the same links. The two take turns, 32 MiB at a
// time on a fresh connection, so that a busy machine slows both alike.
func BenchmarkTunMode(b *testing.B) {
	tn := newTunNet(b)
	src := listenIn(b, tn.world, worldAddr+":0")
	go serveStream(src)
	srcAddr := src.Addr().(*net.TCPAddr).AddrPort()
	k := startKernelClient(b, tn.cli1, "10.66.0.2/32")
	run(b, "ip", "-n", k.ns, "route", "add", worldAddr+"/32", "dev", k.iface)
	cred, sec := newCred(b, "bench", 0)

	// The stock server's namespace: a veth to the client, one to the world.
	stock := tn.srv + "x"
	run(b, "ip", "netns", "add", stock)
	b.Cleanup(func() { exec.Command("ip", "netns", "del", stock).Run() })
	run(b, "ip", "-n", stock, "link", "set", "lo", "up")
	run(b, "ip", "-n", stock, "link", "add", "vc", "type", "veth", "peer", "name", "vs2", "netns", tn.cli1)
	run(b, "ip", "-n", stock, "addr", "add", "192.0.2.9/30", "dev", "vc")
	run(b, "ip", "-n", stock, "link", "set", "vc", "up")
	run(b, "ip", "-n", tn.cli1, "addr", "add", "192.0.2.10/30", "dev", "vs2")
	run(b, "ip", "-n", tn.cli1, "link", "set", "vs2", "up")
	run(b, "ip", "-n", stock, "link", "add", "vw", "type", "veth", "peer", "name", "vs2", "netns", tn.world)
	run(b, "ip", "-n", stock, "addr", "add", "100.64.0.2/30", "dev", "vw")
	run(b, "ip", "-n", stock, "link", "set", "vw", "up")
	run(b, "ip", "-n", tn.world, "addr", "add", "100.64.0.1/30", "dev", "vs2")
	run(b, "ip", "-n", tn.world, "link", "set", "vs2", "up")
	run(b, "ip", "-n", stock, "route", "add", "default", "via", "100.64.0.1")
	stockPub, stockPort := stockTunServer(b, stock, "vw", cred.Public, sec)
	stockEP := netip.AddrPortFrom(netip.MustParseAddr("192.0.2.9"), stockPort)

	b.Setenv("USIPIPO_TUN_BENCH", "1")
	node := startTunNode(b, tn.srv, worldAddr+"/32")
	node.apply(b, cred)
	ourPub, ourEP := hexKey(b, node.pub), netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), uint16(node.port))

	var ours, theirs time.Duration
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(32, b.N-done)
		ours += k.transfer(b, sec, ourPub, ourEP, srcAddr, n)
		theirs += k.transfer(b, sec, stockPub, stockEP, srcAddr, n)
		done += n
	}
	b.StopTimer()
	gbit := func(d time.Duration) float64 { return float64(b.N) * 8 * (1 << 20) / d.Seconds() / 1e9 }
	b.ReportMetric(gbit(ours), "usipipo-Gbit/s")
	b.ReportMetric(gbit(theirs), "stock-Gbit/s")
	b.ReportMetric(gbit(ours)/gbit(theirs), "ratio")
}

// transfer points the client at a server and times the download of mib
// MiB from src on a new connection.
func (k *kernelClient) transfer(b *testing.B, sec Secret, pubHex string, ep, src netip.AddrPort, mib int) time.Duration {
	k.peerWith(b, sec, pubHex, ep)
	c := k.dial(b, src)
	defer c.Close()
	start := time.Now()
	if _, err := io.CopyN(io.Discard, c, int64(mib)<<20); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// stockTunServer runs wireguard-go (from the pinned module) with a kernel
// TUN in the server's namespace, forwarding on and a plain masquerade out
// of the uplink: what a hand-made WireGuard exit is.
func stockTunServer(b *testing.B, ns, uplink, clientPub string, sec Secret) (string, uint16) {
	bin := buildWireguardGo(b)
	iface := fmt.Sprintf("swg%d", os.Getpid()%100000)
	sock := "/var/run/wireguard/" + iface + ".sock"
	cmd := exec.Command("ip", "netns", "exec", ns, bin, "-f", iface)
	cmd.Env = append(os.Environ(), "LOG_LEVEL=error")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		os.Remove(sock)
		exec.Command("ip", "netns", "exec", ns, "nft", "delete", "table", "ip", "stockbench").Run()
	})
	eventually(b, 5*time.Second, "wireguard-go's socket", func() bool { _, err := os.Stat(sock); return err == nil })
	priv, _ := ecdh.X25519().GenerateKey(rand.Reader)
	kc := &kernelClient{ns: ns, iface: iface, sock: sock}
	const port = 51899
	kc.configure(b, fmt.Sprintf("private_key=%x\nlisten_port=%d\npublic_key=%s\npreshared_key=%x\nallowed_ip=10.66.0.2/32\n",
		priv.Bytes(), port, hexKey(b, clientPub), sec.PSK))
	run(b, "ip", "-n", ns, "addr", "add", "10.66.0.1/16", "dev", iface)
	run(b, "ip", "-n", ns, "link", "set", iface, "mtu", "1420", "up")
	if out, err := nsOut(ns, nil, "sysctl", "-qw", "net.ipv4.ip_forward=1"); err != nil {
		b.Fatalf("ip_forward: %v %s", err, out)
	}
	nft := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	nft.Stdin = strings.NewReader("table ip stockbench {\n chain post { type nat hook postrouting priority srcnat; ip saddr 10.66.0.0/16 oifname \"" +
		uplink + "\" masquerade; }\n}\n")
	if out, err := nft.CombinedOutput(); err != nil {
		b.Fatalf("nft: %v %s", err, out)
	}
	return hex.EncodeToString(priv.PublicKey().Bytes()), port
}
