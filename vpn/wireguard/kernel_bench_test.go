//go:build linux

package wireguard

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/usipipo/usipipo/app/plane"
)

// Addresses of the veth pair between the host and the client's namespace.
const (
	vethHost = "10.201.0.1"
	vethNS   = "10.201.0.2"
)

// kernelClient is wireguard-go (built from the pinned module) with a kernel
// TUN in a network namespace joined to the host by a veth pair: a client
// with kernel TCP, so that the client is not the bottleneck.
type kernelClient struct {
	ns, iface string
	sock      string
	pid       int // the wireguard-go process, for its CPU time
}

func newKernelClient(b *testing.B) *kernelClient {
	k := startKernelClient(b, newNetns(b), "10.66.0.2/32")
	run(b, "ip", "-n", k.ns, "route", "add", "10.66.0.0/16", "dev", k.iface)
	run(b, "ip", "-n", k.ns, "route", "add", "192.0.2.0/24", "dev", k.iface)
	return k
}

// startKernelClient runs the client in namespace ns with tunnel address
// addr; the caller routes through it.
func startKernelClient(b *testing.B, ns, addr string) *kernelClient {
	bin := buildWireguardGo(b)
	k := &kernelClient{ns: ns, iface: fmt.Sprintf("uwg%d", os.Getpid()%100000)}
	k.sock = "/var/run/wireguard/" + k.iface + ".sock"
	cmd := exec.Command("ip", "netns", "exec", k.ns, bin, "-f", k.iface)
	cmd.Env = append(os.Environ(), "LOG_LEVEL=error")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	k.pid = cmd.Process.Pid // ip netns exec execs the binary in place
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); os.Remove(k.sock) })
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(k.sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("wireguard-go did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	run(b, "ip", "-n", k.ns, "addr", "add", addr, "dev", k.iface)
	run(b, "ip", "-n", k.ns, "link", "set", k.iface, "mtu", "1420", "up")
	return k
}

// buildWireguardGo builds wireguard-go from the pinned module.
func buildWireguardGo(b *testing.B) string {
	bin := filepath.Join(b.TempDir(), "wireguard-go")
	if out, err := exec.Command("go", "build", "-o", bin, "golang.zx2c4.com/wireguard").CombinedOutput(); err != nil {
		b.Skipf("building wireguard-go: %v\n%s", err, out)
	}
	return bin
}

// newNetns creates a network namespace joined to the host by a veth pair
// (vethHost here, vethNS there), removed when the test ends; it skips the
// test where that is not possible.
func newNetns(t testing.TB) string {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skip("no /dev/net/tun")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("no ip (iproute2)")
	}
	ns := fmt.Sprintf("uspwg%d", os.Getpid())
	suffix := strconv.Itoa(os.Getpid() % 100000)
	vh, vn := "uvh"+suffix, "uvn"+suffix
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	run(t, "ip", "link", "add", vh, "type", "veth", "peer", "name", vn, "netns", ns)
	t.Cleanup(func() { exec.Command("ip", "link", "del", vh).Run() })
	run(t, "ip", "addr", "add", vethHost+"/30", "dev", vh)
	run(t, "ip", "link", "set", vh, "up")
	run(t, "ip", "-n", ns, "addr", "add", vethNS+"/30", "dev", vn)
	run(t, "ip", "-n", ns, "link", "set", vn, "up")
	run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	return ns
}

func run(b testing.TB, name string, args ...string) {
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		b.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// configure sends a UAPI set to the client's wireguard-go.
func (k *kernelClient) configure(b *testing.B, set string) {
	c, err := net.Dial("unix", k.sock)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "set=1\n%s\n", set)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "errno=0\n" {
		b.Fatalf("uapi set: %q %v", line, err)
	}
}

// peerWith points the client at a server.
func (k *kernelClient) peerWith(b *testing.B, sec Secret, serverPubHex string, endpoint netip.AddrPort) {
	k.configure(b, fmt.Sprintf("private_key=%x\nreplace_peers=true\npublic_key=%s\npreshared_key=%x\nendpoint=%s\nallowed_ip=0.0.0.0/0\n",
		sec.Private, serverPubHex, sec.PSK, endpoint))
}

// dial connects from inside the client's namespace (kernel TCP).
func (k *kernelClient) dial(b *testing.B, addr netip.AddrPort) net.Conn {
	type result struct {
		c   net.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // the thread is dropped, not unlocked: it stays in the namespace
		f, err := os.Open("/var/run/netns/" + k.ns)
		if err != nil {
			done <- result{nil, err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- result{nil, err}
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr.String())
		done <- result{c, err}
	}()
	r := <-done
	if r.err != nil {
		b.Fatal(r.err)
	}
	return r.c
}

// BenchmarkKernelClient is bulk TCP download to a kernel-TCP client: over
// the bare veth, through this package's server (netstack mode, flows
// re-dialled to 127.0.0.1), and through wireguard-go's stock tun/netstack
// as the server (sending from its own stack).
func BenchmarkKernelClient(b *testing.B) {
	k := newKernelClient(b)
	b.Run("veth", func(b *testing.B) {
		ln, err := net.Listen("tcp", vethHost+":0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		go serveStream(ln)
		c := k.dial(b, ln.Addr().(*net.TCPAddr).AddrPort())
		defer c.Close()
		drain(b, c)
	})
	b.Run("usipipo-netstack", func(b *testing.B) {
		srv := newTestServerOn(b, vethHost+":0", loopback, Options{})
		cred, sec := newCred(b, "kc", 0)
		if err := srv.Apply(context.Background(), []plane.Credential{cred}); err != nil {
			b.Fatal(err)
		}
		k.peerWith(b, sec, hexKey(b, srv.PublicKey()), srv.addr)
		c := k.dial(b, viaTest(startSource(b)))
		defer c.Close()
		drain(b, c)
		st := srv.tdev.Stack().Stats()
		b.Logf("server stack: %d retransmits of %d segments; client %s", st.TCP.Retransmits.Value(), st.TCP.SegmentsSent.Value(), nsUDPErrors(k))
	})
	b.Run("stock-netstack", func(b *testing.B) {
		tnet, pub, _, ep := stockServer(b)
		ln, err := tnet.ListenTCPAddrPort(netip.MustParseAddrPort("10.66.0.1:5001"))
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		go serveStream(ln)
		port := strings.TrimPrefix(ep, "127.0.0.1:")
		k.peerWith(b, stockSecret, pub, netip.MustParseAddrPort(vethHost+":"+port))
		c := k.dial(b, netip.MustParseAddrPort("10.66.0.1:5001"))
		defer c.Close()
		drain(b, c)
	})
}

func nsUDPErrors(k *kernelClient) string {
	out, _ := exec.Command("ip", "netns", "exec", k.ns, "cat", "/proc/net/snmp").Output()
	last := ""
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "Udp: ") {
			last = l
		}
	}
	return last
}

// TestBindSendWholeOverVeth: a long run of WireGuard-sized datagrams leaves
// as GSO messages that a veth carries whole, so a receiver with UDP receive
// offload in the other namespace reads a few large messages, each datagram
// intact and in order. (Messages near the 65507-byte UDP limit pass the
// socket but not the device's 64 KiB GSO limit, link header included, and
// the kernel cuts them into single datagrams on the way out.)
func TestBindSendWholeOverVeth(t *testing.T) {
	ns := newNetns(t)
	var sink *net.UDPConn
	if err := inNetns(ns, func() (err error) {
		sink, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(vethNS)})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	sink.SetReadBuffer(4 << 20)
	if !enableGRO(sink) {
		t.Skip("no UDP receive offload")
	}
	src, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(vethHost)})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	b, err := newSocketBind(src)
	if err != nil {
		t.Fatal(err)
	}
	if !b.gso.Load() {
		t.Skip("no UDP segmentation offload")
	}
	const count, size = 128, 1424 // a full-MTU WireGuard data message
	bufs := make([][]byte, count)
	for i := range bufs {
		bufs[i] = bytes.Repeat([]byte{byte(i)}, size)
	}
	ep, err := b.ParseEndpoint(vethNS + ":" + strconv.Itoa(sink.LocalAddr().(*net.UDPAddr).Port))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Send(bufs, ep); err != nil {
		t.Fatal(err)
	}
	buf, oob := make([]byte, 65536), make([]byte, 128)
	msgs, next := 0, 0
	for next < count {
		sink.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, oobn, _, _, err := sink.ReadMsgUDP(buf, oob)
		if err != nil {
			t.Fatalf("after %d of %d datagrams: %v", next, count, err)
		}
		msgs++
		seg := groSize(oob[:oobn])
		if seg == 0 {
			seg = n
		}
		for off := 0; off < n; off += seg {
			d := buf[off:min(off+seg, n)]
			if len(d) != size || d[0] != byte(next) || d[size-1] != byte(next) {
				t.Fatalf("datagram %d: %d bytes of %d", next, len(d), d[0])
			}
			next++
		}
	}
	if want := (count*size + gsoMaxPayload - 1) / gsoMaxPayload; msgs > want {
		t.Fatalf("%d datagrams arrived as %d messages, want at most %d", count, msgs, want)
	}
}
