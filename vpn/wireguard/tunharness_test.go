//go:build linux

package wireguard

import (
	"bufio"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"golang.org/x/sys/unix"

	"github.com/usipipo/usipipo/app/egress"
	"github.com/usipipo/usipipo/app/plane"
)

// Tun-mode tests never touch this host's interfaces or firewall: the
// server runs in a child process (this test binary, re-run under `ip netns
// exec`) inside a namespace of its own, driven over its stdin and stdout.
//
//	client ns ──veth 192.0.2.0/30 (.4/30 for a second one)── server ns ──veth 198.51.100.0/24── world ns
//	                                                           usipipo0                          sinks on .2; 203.0.113.1 (denied)

const (
	tunChildEnv    = "USIPIPO_TUN_CHILD" // set in the child: its egress allow list
	tunFirewallEnv = "USIPIPO_TUN_FW"    // the child's firewall tool: nft or iptables
	worldAddr      = "198.51.100.2"      // the sinks, allowed by the child's policy
	uplinkAddr     = "198.51.100.1"      // the server's own uplink address
	deniedAddr     = "203.0.113.1"       // a sink in a denied range
)

// tunRequest and tunReply are the child's protocol, one JSON object a line.
type tunRequest struct {
	Op    string             `json:"op"` // apply, metrics, counters, refresh, close
	Creds []plane.Credential `json:"creds,omitempty"`
}

type tunReply struct {
	Ready    bool            `json:"ready,omitempty"`
	Pub      string          `json:"pub,omitempty"`
	Port     int             `json:"port,omitempty"`
	Error    string          `json:"error,omitempty"`
	Metrics  string          `json:"metrics,omitempty"`
	Counters *plane.Snapshot `json:"counters,omitempty"`
}

// TestTunChild is the child's side; it runs only when re-executed.
func TestTunChild(t *testing.T) {
	allow := os.Getenv(tunChildEnv)
	if allow == "" {
		t.Skip("the tun-mode server's child process (run by the tun tests)")
	}
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var prefixes []netip.Prefix
	for _, a := range strings.Split(allow, ",") {
		if a != "none" {
			prefixes = append(prefixes, netip.MustParsePrefix(a))
		}
	}
	eg, err := egress.New(egress.Options{Allow: prefixes, FlowsPerSecond: -1})
	if err != nil {
		t.Fatal(err)
	}
	ms := metrics.NewSet()
	srv, err := New(Options{PrivateKey: priv.Bytes(), Conn: pc, Egress: eg, Metrics: ms, Mode: ModeTUN, firewall: os.Getenv(tunFirewallEnv),
		Interval: childInterval(), Resolver: startDNSWith(t, netip.MustParseAddr(worldAddr).As4())})
	enc := json.NewEncoder(os.Stdout)
	if err != nil {
		enc.Encode(tunReply{Error: err.Error()})
		return
	}
	defer srv.Close()
	enc.Encode(tunReply{Ready: true, Pub: srv.PublicKey(), Port: pc.LocalAddr().(*net.UDPAddr).Port})
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var req tunRequest
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			enc.Encode(tunReply{Error: err.Error()})
			continue
		}
		var r tunReply
		switch req.Op {
		case "apply":
			if err := srv.Apply(t.Context(), req.Creds); err != nil {
				r.Error = err.Error()
			}
		case "metrics":
			var b strings.Builder
			ms.WritePrometheus(&b)
			r.Metrics = b.String()
		case "counters":
			snap, err := srv.Counters(t.Context())
			if err != nil {
				r.Error = err.Error()
			}
			r.Counters = &snap
		case "refresh":
			if err := srv.refreshFirewall(); err != nil {
				r.Error = err.Error()
			}
		case "close":
			srv.Close()
			enc.Encode(r)
			return
		}
		enc.Encode(r)
	}
}

// tunNode is the parent's handle on a child server.
type tunNode struct {
	cmd  *exec.Cmd
	enc  *json.Encoder
	dec  *json.Decoder
	pub  string
	port int
}

// startTunNode runs a tun-mode server in namespace ns whose egress allows
// allow; it fails the test if the server does not start.
func startTunNode(t testing.TB, ns string, allow ...string) *tunNode {
	t.Helper()
	n, err := tryTunNode(t, ns, allow...)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func tryTunNode(t testing.TB, ns string, allow ...string) (*tunNode, error) {
	if len(allow) == 0 {
		allow = []string{"none"}
	}
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run", "^TestTunChild$", "-test.v=false")
	if p := os.Getenv("HACK_PROF"); p != "" {
		cmd.Args = append(cmd.Args, "-test.cpuprofile", p)
	}
	cmd.Env = append(os.Environ(), tunChildEnv+"="+strings.Join(allow, ","))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	n := &tunNode{cmd: cmd, enc: json.NewEncoder(in), dec: json.NewDecoder(out)}
	t.Cleanup(func() { in.Close(); n.wait() })
	var r tunReply
	if err := n.dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("tun child: %w", err)
	}
	if !r.Ready {
		return nil, fmt.Errorf("tun child did not start: %s", r.Error)
	}
	n.pub, n.port = r.Pub, r.Port
	return n, nil
}

func (n *tunNode) wait() {
	done := make(chan struct{})
	go func() { n.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		n.cmd.Process.Kill()
		<-done
	}
}

func (n *tunNode) call(t testing.TB, req tunRequest) tunReply {
	t.Helper()
	if err := n.enc.Encode(req); err != nil {
		t.Fatalf("tun child %s: %v", req.Op, err)
	}
	var r tunReply
	if err := n.dec.Decode(&r); err != nil {
		t.Fatalf("tun child %s: %v", req.Op, err)
	}
	if r.Error != "" {
		t.Fatalf("tun child %s: %s", req.Op, r.Error)
	}
	return r
}

func (n *tunNode) apply(t testing.TB, creds ...plane.Credential) {
	t.Helper()
	n.call(t, tunRequest{Op: "apply", Creds: creds})
}

// metric reads one metric's value from the child.
func (n *tunNode) metric(t testing.TB, name string) string {
	t.Helper()
	for _, line := range strings.Split(n.call(t, tunRequest{Op: "metrics"}).Metrics, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	t.Fatalf("metric %s missing", name)
	return ""
}

// close stops the child's server and waits for the process.
func (n *tunNode) close(t testing.TB) {
	t.Helper()
	n.call(t, tunRequest{Op: "close"})
	n.wait()
}

// tunNet is the namespaces of one tun-mode test.
type tunNet struct{ srv, world, cli1, cli2 string }

// newTunNet builds the topology above, or skips the test.
func newTunNet(t testing.TB) *tunNet {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("tun mode needs root for network namespaces")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skip("no /dev/net/tun")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s (Debian iproute2, nftables)", tool)
		}
	}
	id := os.Getpid() % 100000
	n := &tunNet{srv: fmt.Sprintf("ust%ds", id), world: fmt.Sprintf("ust%dw", id), cli1: fmt.Sprintf("ust%dc", id), cli2: fmt.Sprintf("ust%dd", id)}
	for _, ns := range []string{n.srv, n.world, n.cli1, n.cli2} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	veth := func(a, aAddr, b, bAddr string) {
		run(t, "ip", "-n", a, "link", "add", "v"+b, "type", "veth", "peer", "name", "v"+a, "netns", b)
		run(t, "ip", "-n", a, "addr", "add", aAddr, "dev", "v"+b)
		run(t, "ip", "-n", a, "link", "set", "v"+b, "up")
		run(t, "ip", "-n", b, "addr", "add", bAddr, "dev", "v"+a)
		run(t, "ip", "-n", b, "link", "set", "v"+a, "up")
	}
	veth(n.srv, uplinkAddr+"/24", n.world, worldAddr+"/24")
	veth(n.srv, "192.0.2.1/30", n.cli1, "192.0.2.2/30")
	veth(n.srv, "192.0.2.5/30", n.cli2, "192.0.2.6/30")
	run(t, "ip", "-n", n.srv, "route", "add", "default", "via", worldAddr)
	run(t, "ip", "-n", n.world, "addr", "add", deniedAddr+"/24", "dev", "lo")
	return n
}

// inNetns runs f on a thread in namespace ns; sockets f opens stay there.
// The thread is not unlocked, so it ends with the goroutine.
func inNetns(ns string, f func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		h, err := os.Open("/var/run/netns/" + ns)
		if err != nil {
			done <- err
			return
		}
		defer h.Close()
		if err := unix.Setns(int(h.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- err
			return
		}
		done <- f()
	}()
	return <-done
}

// listenIn listens on TCP addr in namespace ns.
func listenIn(t testing.TB, ns, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	if err := inNetns(ns, func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// nsOut runs a command in namespace ns.
func nsOut(ns string, env []string, args ...string) (string, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// childInterval is the child server's counter interval: short for the
// tests' limits, the default for benchmarks (USIPIPO_TUN_BENCH).
func childInterval() time.Duration {
	if os.Getenv("USIPIPO_TUN_BENCH") != "" {
		return 0
	}
	return 200 * time.Millisecond
}
