//go:build linux

package upgrade_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/conn"

	"github.com/usipipo/usipipo/app/admin"
)

// Tun-mode upgrades run the node inside network namespaces of their own,
// so the host's interfaces and firewall are never touched:
//
//	client ns ──veth 192.0.2.0/30── server ns (node, usipipo0) ──veth 198.51.100.0/24── world ns (TCP echo sink)
//
// The client is wireguard-go (userspace stack) whose UDP socket lives in
// the client namespace; its traffic to the sink is forwarded by the server
// namespace's kernel and masqueraded out of the uplink.

const (
	tunSink     = "198.51.100.2:7000"
	tunEndpoint = "192.0.2.1"
)

// tunNets are one test's namespaces.
type tunNets struct{ srv, world, cli string }

func newTunNets(t *testing.T) tunNets {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary in network namespaces")
	}
	if os.Geteuid() != 0 {
		t.Skip("tun mode needs root for network namespaces and a TUN interface")
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
	n := tunNets{srv: fmt.Sprintf("uup%ds", id), world: fmt.Sprintf("uup%dw", id), cli: fmt.Sprintf("uup%dc", id)}
	sh := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v %s", args, err, out)
		}
	}
	for _, ns := range []string{n.srv, n.world, n.cli} {
		sh("netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		sh("-n", ns, "link", "set", "lo", "up")
	}
	veth := func(a, aAddr, b, bAddr string) {
		sh("-n", a, "link", "add", "v"+b, "type", "veth", "peer", "name", "v"+a, "netns", b)
		sh("-n", a, "addr", "add", aAddr, "dev", "v"+b)
		sh("-n", a, "link", "set", "v"+b, "up")
		sh("-n", b, "addr", "add", bAddr, "dev", "v"+a)
		sh("-n", b, "link", "set", "v"+a, "up")
	}
	veth(n.srv, "198.51.100.1/24", n.world, "198.51.100.2/24")
	veth(n.srv, tunEndpoint+"/30", n.cli, "192.0.2.2/30")
	sh("-n", n.srv, "route", "add", "default", "via", "198.51.100.2")
	// Conntrack must not pick up flows mid-stream: an in-tunnel TCP flow
	// that survives an upgrade then proves its entry survived (a new one
	// would be invalid, which the firewall drops).
	if out, err := nsRun(n.srv, "sh", "-c", "echo 0 > /proc/sys/net/netfilter/nf_conntrack_tcp_loose"); err != nil {
		t.Logf("conntrack loose pick-up stays on (%v %s): the surviving flow proves less", err, out)
	}
	return n
}

func nsRun(ns string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	return string(out), err
}

// inNetns runs f on an OS thread in namespace ns (sockets it opens stay
// there); the thread dies with its goroutine.
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

// nsBind is a wireguard-go bind whose sockets open in a namespace.
type nsBind struct {
	conn.Bind
	ns string
}

func (b nsBind) Open(port uint16) (fns []conn.ReceiveFunc, actual uint16, err error) {
	if nerr := inNetns(b.ns, func() error { fns, actual, err = b.Bind.Open(port); return nil }); nerr != nil {
		return nil, 0, nerr
	}
	return fns, actual, err
}

// tunSinkIn serves a TCP echo on tunSink in namespace ns.
func tunSinkIn(t *testing.T, ns string) {
	t.Helper()
	var ln net.Listener
	if err := inNetns(ns, func() (err error) { ln, err = net.Listen("tcp", tunSink); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
}

// startTunNode runs bin in namespace ns with --wg-mode tun.
func startTunNode(t *testing.T, bin, ns string) *testNode {
	t.Helper()
	n := &testNode{t: t, bin: bin, data: filepath.Join(t.TempDir(), "data"), logs: newLogFile(t), exited: make(chan struct{}),
		http: "127.0.0.1:8080", ss: 8388, mt: 8443, wg: 51820}
	n.cmd = exec.Command("ip", "netns", "exec", ns, bin, "serve", "--data", n.data, "--http", n.http,
		"--wg-listen", fmt.Sprintf("0.0.0.0:%d", n.wg), "--wg-mode", "tun",
		"--ss-listen", fmt.Sprintf("127.0.0.1:%d", n.ss), "--mtproto-listen", fmt.Sprintf("127.0.0.1:%d", n.mt),
		"--egress-allow", "198.51.100.0/24", "--public-host", tunEndpoint, "--log-level", "debug")
	n.run(nil)
	return n
}

// tunPeer issues a WireGuard key on n and connects a client to it from
// namespace ns; it fails the test unless the client reaches the sink.
func tunPeer(t *testing.T, n *testNode, ns string) *wgPeer {
	t.Helper()
	var u struct {
		ID string `json:"id"`
	}
	n.call("user.add", admin.UserAdd{TelegramID: 99}, &u)
	var key struct {
		Config struct {
			Text string `json:"text"`
		} `json:"config"`
	}
	n.call("key.add", admin.KeyAdd{UserID: u.ID, Type: "wireguard"}, &key)
	p := newWGPeerOn(t, key.Config.Text, nsBind{Bind: conn.NewStdNetBind(), ns: ns})
	if took, err := p.reachSink(10 * time.Second); err != nil {
		t.Fatalf("no traffic to the sink through the tunnel (%v): %v", took, err)
	}
	return p
}

// dialSink opens a TCP flow through the tunnel to the sink.
func (p *wgPeer) dialSink(ctx context.Context) (net.Conn, error) {
	return p.net.DialContext(ctx, "tcp", tunSink)
}

// reachSink opens new flows to the sink until one echoes or d passes; it
// returns how long it took.
func (p *wgPeer) reachSink(d time.Duration) (time.Duration, error) {
	start := time.Now()
	err := errors.New("not tried")
	for time.Since(start) < d {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		var c net.Conn
		if c, err = p.dialSink(ctx); err == nil {
			c.SetDeadline(time.Now().Add(time.Second))
			err = roundTrip(c, []byte("new flow"))
			c.Close()
		}
		cancel()
		if err == nil {
			return time.Since(start), nil
		}
	}
	return time.Since(start), err
}

// openFlow opens a flow to the sink that the test keeps across upgrades.
func openFlow(t *testing.T, p *wgPeer) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := p.dialSink(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := roundTrip(c, []byte("before")); err != nil {
		t.Fatal(err)
	}
	return c
}

// echoLoop echoes on c back to back until the returned stop is called,
// which reports the longest round trip and the first error.
func echoLoop(c net.Conn) (stop func() (time.Duration, error)) {
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		longest time.Duration
		err     error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		for ctx.Err() == nil && r.err == nil {
			t0 := time.Now()
			r.err = roundTrip(c, []byte("busy"))
			r.longest = max(r.longest, time.Since(t0))
			time.Sleep(10 * time.Millisecond)
		}
		done <- r
	}()
	return func() (time.Duration, error) {
		cancel()
		r := <-done
		return r.longest, r.err
	}
}

// flowEntry is the server namespace's conntrack entry of the kept flow
// (by the sink's port and the peer's tunnel address), "" if none.
func flowEntry(ns string, flow net.Conn) string {
	out, _ := nsRun(ns, "cat", "/proc/net/nf_conntrack")
	local := flow.LocalAddr().(*net.TCPAddr)
	want := fmt.Sprintf("src=%s dst=198.51.100.2 sport=%d dport=7000", local.IP, local.Port)
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, want) {
			return strings.Join(strings.Fields(l), " ")
		}
	}
	return ""
}

// tunUp reports whether the server namespace has usipipo0 and the
// firewall table.
func tunUp(t *testing.T, ns string) {
	t.Helper()
	if out, err := nsRun(ns, "ip", "link", "show", "usipipo0"); err != nil {
		t.Errorf("no usipipo0: %v %s", err, out)
	}
	if out, err := nsRun(ns, "nft", "list", "table", "inet", "usipipo"); err != nil {
		t.Errorf("no firewall table: %v %s", err, out)
	}
}

// TestUpgradeTunMode upgrades a node whose WireGuard runs in tun mode: the
// old process removes usipipo0 and its firewall table at the store's
// release, the new one creates them and greets the peers, which pass
// traffic again within 10 s; an in-tunnel TCP flow the kernel NATs outlives
// the upgrade, since its conntrack entry is kernel state the table's
// removal does not flush.
func TestUpgradeTunMode(t *testing.T) {
	nets := newTunNets(t)
	dir := t.TempDir()
	v1, v2 := build(t, dir, "v1.0.0-test"), build(t, dir, "v2.0.0-test")
	tunSinkIn(t, nets.world)
	n := startTunNode(t, v1, nets.srv)
	before, err := n.status()
	if err != nil {
		t.Fatal(err)
	}
	peer := tunPeer(t, n, nets.cli)
	flow := openFlow(t, peer)
	entry := flowEntry(nets.srv, flow)
	t.Logf("the kept flow's conntrack entry before: %s", entry)

	busy := openFlow(t, peer)
	stall := echoLoop(busy)
	start := time.Now()
	if out, err := n.cli(v2, "upgrade", "--binary", v2); err != nil {
		t.Fatalf("usipipo upgrade: %v\n%s", err, out)
	}
	upgraded := time.Since(start)
	took, err := peer.reachSink(10 * time.Second)
	if err != nil {
		t.Fatalf("no new flow through the tunnel within %v of the upgrade: %v", took, err)
	}
	t.Logf("upgrade command took %v; a new flow passed %v after it returned", upgraded.Round(time.Millisecond), took.Round(time.Millisecond))
	st, err := n.status()
	if err != nil || st.PID == before.PID {
		t.Fatalf("after the upgrade: %+v %v (old pid %d)", st, err, before.PID)
	}
	kept := time.Now()
	if err := roundTrip(flow, []byte("after the upgrade")); err != nil {
		t.Fatalf("the in-tunnel TCP flow did not survive the upgrade: %v (conntrack entry now %q)", err, flowEntry(nets.srv, flow))
	}
	longest, err := stall()
	if err != nil {
		t.Fatalf("a flow busy during the upgrade broke: %v", err)
	}
	t.Logf("a flow echoing throughout the upgrade stalled at most %v", longest.Round(time.Millisecond))
	t.Logf("the kept flow echoed again after %v; its conntrack entry: %s", time.Since(kept).Round(time.Millisecond), flowEntry(nets.srv, flow))
	tunUp(t, nets.srv)
	logs := n.logs.String()
	for _, want := range []string{"upgrade_tun_stopped", "upgrade_reached_peers", "upgrade_took_over"} {
		if !strings.Contains(logs, want) {
			t.Errorf("no %s in the logs", want)
		}
	}
}

// TestUpgradeTunFailureKeepsServing: a new binary that takes the store and
// dies after the old process stopped its TUN interface leaves the old one
// serving again with usipipo0 and its firewall recreated: peers pass
// traffic within 10 s and the kept flow survives; a later upgrade then
// succeeds.
func TestUpgradeTunFailureKeepsServing(t *testing.T) {
	nets := newTunNets(t)
	dir := t.TempDir()
	v1 := build(t, dir, "v1.0.0-test")
	tunSinkIn(t, nets.world)
	n := startTunNode(t, v1, nets.srv)
	before, err := n.status()
	if err != nil {
		t.Fatal(err)
	}
	peer := tunPeer(t, n, nets.cli)
	flow := openFlow(t, peer)

	dies := filepath.Join(dir, "dies")
	script := "#!/bin/bash\nprintf '{\"op\":\"release\"}\\n' >&\"$USIPIPO_UPGRADE_FD\"\nread -r line <&\"$USIPIPO_UPGRADE_FD\"\nexit 3\n"
	if err := os.WriteFile(dies, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	busy := openFlow(t, peer)
	stall := echoLoop(busy)
	start := time.Now()
	out, err := n.cli(v1, "upgrade", "--binary", dies, "--timeout", "20s")
	t.Logf("the failed upgrade took %v", time.Since(start).Round(time.Millisecond))
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(out, "exited before it was ready (exit status 3)") {
		t.Fatalf("upgrade to a dying binary: err %v, output %q", err, out)
	}
	st, err := n.status()
	if err != nil || st.PID != before.PID {
		t.Fatalf("after the failed upgrade: %+v %v", st, err)
	}
	took, err := peer.reachSink(10 * time.Second)
	if err != nil {
		t.Fatalf("no new flow through the tunnel within %v of the failed upgrade: %v", took, err)
	}
	t.Logf("a new flow passed %v after the failed upgrade returned", took.Round(time.Millisecond))
	longest, err := stall()
	if err != nil {
		t.Fatalf("a flow busy during the failed upgrade broke: %v", err)
	}
	t.Logf("a flow echoing throughout the failed upgrade stalled at most %v", longest.Round(time.Millisecond))
	if err := roundTrip(flow, []byte("after the failed upgrade")); err != nil {
		t.Fatalf("the in-tunnel TCP flow did not survive the failed upgrade: %v", err)
	}
	tunUp(t, nets.srv)
	logs := n.logs.String()
	for _, want := range []string{"upgrade_tun_stopped", "upgrade_tun_restarted", "upgrade_rolled_back"} {
		if !strings.Contains(logs, want) {
			t.Errorf("no %s in the logs", want)
		}
	}
	// The store is open again: a write goes through.
	var u map[string]any
	n.call("user.add", admin.UserAdd{TelegramID: 123}, &u)

	// The restarted plane hands over like the first one.
	start = time.Now()
	if out, err := n.cli(v1, "upgrade", "--binary", v1); err != nil {
		t.Fatalf("usipipo upgrade after the failed one: %v\n%s", err, out)
	}
	t.Logf("the second upgrade took %v", time.Since(start).Round(time.Millisecond))
	if took, err := peer.reachSink(10 * time.Second); err != nil {
		t.Fatalf("no new flow within %v of the second upgrade: %v", took, err)
	}
	if err := roundTrip(flow, []byte("after the second upgrade")); err != nil {
		t.Fatalf("the in-tunnel TCP flow did not survive the second upgrade: %v", err)
	}
}
