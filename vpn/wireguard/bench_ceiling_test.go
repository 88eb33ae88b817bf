//go:build linux

package wireguard

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// tunPeer is stock wireguard-go with a kernel TUN in a namespace of its
// own, joined to the client's namespace by a veth pair, serving bulk TCP
// from a listener on its tunnel address: the kernel's TCP sends 64 KiB TSO
// segments that wireguard-go reads from its TUN whole. It is the best-fed
// a wireguard-go client can be over WireGuard, so what the client spends
// per MiB against it is the client's own floor.
type tunPeer struct {
	pub string         // the server's public key, hex
	ep  netip.AddrPort // its WireGuard endpoint, seen from the client
	src netip.AddrPort // the stream source on its tunnel address
	pid int            // the wireguard-go process, for its CPU time
}

func newTunPeer(b *testing.B, k *kernelClient, clientPub string, sec Secret) *tunPeer {
	suffix := strconv.Itoa(os.Getpid() % 100000)
	ns := k.ns + "t"
	run(b, "ip", "netns", "add", ns)
	b.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	run(b, "ip", "-n", ns, "link", "set", "lo", "up")
	vs, vc := "uts"+suffix, "utc"+suffix
	run(b, "ip", "-n", ns, "link", "add", vs, "type", "veth", "peer", "name", vc, "netns", k.ns)
	run(b, "ip", "-n", ns, "addr", "add", "10.202.0.1/30", "dev", vs)
	run(b, "ip", "-n", ns, "link", "set", vs, "up")
	run(b, "ip", "-n", k.ns, "addr", "add", "10.202.0.2/30", "dev", vc)
	run(b, "ip", "-n", k.ns, "link", "set", vc, "up")

	bin := buildWireguardGo(b)
	iface := "utw" + suffix
	sock := "/var/run/wireguard/" + iface + ".sock"
	cmd := exec.Command("ip", "netns", "exec", ns, bin, "-f", iface)
	cmd.Env = append(os.Environ(), "LOG_LEVEL=error")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); os.Remove(sock) })
	eventually(b, 5*time.Second, "wireguard-go's socket", func() bool { _, err := os.Stat(sock); return err == nil })
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	const port = 51897
	srv := &kernelClient{ns: ns, iface: iface, sock: sock}
	srv.configure(b, fmt.Sprintf("private_key=%x\nlisten_port=%d\npublic_key=%s\npreshared_key=%x\nallowed_ip=10.66.0.2/32\n",
		priv.Bytes(), port, hexKey(b, clientPub), sec.PSK))
	run(b, "ip", "-n", ns, "addr", "add", "10.66.0.1/16", "dev", iface)
	run(b, "ip", "-n", ns, "link", "set", iface, "mtu", "1420", "up")
	ln := listenIn(b, ns, "10.66.0.1:5003")
	go serveStream(ln)
	return &tunPeer{
		pub: hex.EncodeToString(priv.PublicKey().Bytes()),
		ep:  netip.MustParseAddrPort("10.202.0.1:" + strconv.Itoa(port)),
		src: netip.MustParseAddrPort("10.66.0.1:5003"),
		pid: cmd.Process.Pid, // ip netns exec execs the binary in place
	}
}
