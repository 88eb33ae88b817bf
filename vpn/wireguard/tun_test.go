//go:build linux

package wireguard

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/usipipo/usipipo/app/plane"
)

// TestTunMode runs the server in tun mode in a namespace of its own, with
// wg-quick clients (the very .conf the node hands out) in two others and
// sinks behind its NAT in a fourth: traffic flows (TCP by address and by a
// name from the tunnel's DNS, UDP), peers cannot reach each other, denied
// destinations are refused and counted, the speed limit holds, revocation
// stops traffic, and the firewall is gone after stop and not duplicated
// by a restart over leftover rules; with nftables and with the iptables
// fallback.
func TestTunMode(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: namespaces, wg-quick")
	}
	for _, tool := range []string{"wg-quick", "wg", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s (Debian wireguard-tools, curl)", tool)
		}
	}
	t.Run("nftables", func(t *testing.T) { tunScenario(t, "nft") })
	t.Run("iptables", func(t *testing.T) {
		if _, err := findIptables(); err != nil {
			t.Skip("no iptables, iptables-restore, iptables-save and their ip6tables forms (Debian iptables)")
		}
		tunScenario(t, "iptables")
	})
}

func tunScenario(t *testing.T, fw string) {
	t.Setenv(tunFirewallEnv, fw)
	tn := newTunNet(t)
	web := startWorldHTTP(t, tn.world, worldAddr)
	denied := startWorldHTTP(t, tn.world, deniedAddr)
	node := startTunNode(t, tn.srv, worldAddr+"/32")
	fresh := fwListing(t, tn.srv, fw)

	c1, sec1 := newCred(t, "c1", 0)
	c2, sec2 := newCred(t, "c2", 1)
	node.apply(t, c1, c2)
	wgQuickUp(t, tn.cli1, node, c1, sec1, "192.0.2.1")
	wgQuickUp(t, tn.cli2, node, c2, sec2, "192.0.2.5")
	curl := func(ns string, args ...string) (string, error) {
		return nsOut(ns, nil, append([]string{"curl", "-sS", "--max-time", "3"}, args...)...)
	}

	t.Run("traffic", func(t *testing.T) {
		if out, err := curl(tn.cli1, web+"/hello"); err != nil || out != "hello through the tunnel" {
			t.Fatalf("curl through the node: %v\n%s", err, out)
		}
		port := strings.TrimPrefix(web, "http://"+worldAddr)
		if out, err := curl(tn.cli1, "http://www.example.test"+port+"/hello"); err != nil || out != "hello through the tunnel" {
			t.Fatalf("curl by a name the gateway resolved: %v\n%s", err, out)
		}
		echo := startWorldUDPEcho(t, tn.world)
		if err := inNetns(tn.cli1, func() error { return udpRoundTrip(echo) }); err != nil {
			t.Errorf("UDP echo through the NAT: %v", err)
		}
		// DNS over TCP on the gateway, as a resolver retries after a
		// truncated answer.
		if err := inNetns(tn.cli1, func() error {
			c, err := net.DialTimeout("tcp", net.JoinHostPort(gateway(DefaultPoolV4).String(), "53"), 3*time.Second)
			if err != nil {
				return err
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			m, err := askDNSTCP(c, 7, "www.example.test.")
			if err != nil {
				return err
			}
			if len(m.Answers) != 1 || m.Answers[0].Body.(*dnsmessage.AResource).A != netip.MustParseAddr(worldAddr).As4() {
				return fmt.Errorf("answers %+v", m.Answers)
			}
			return nil
		}); err != nil {
			t.Errorf("DNS over TCP on the gateway: %v", err)
		}
		snap := node.call(t, tunRequest{Op: "counters"}).Counters
		if snap == nil || len(snap.Counters) != 2 {
			t.Fatalf("counters: %+v", snap)
		}
		for _, c := range snap.Counters {
			if c.ID == "c1" && (c.Rx == 0 || c.Tx == 0 || c.LastSeen.IsZero() || c.Sources != 1) {
				t.Errorf("c1's counters: %+v", c)
			}
		}
	})
	t.Run("peers isolated", func(t *testing.T) {
		ln := listenIn(t, tn.cli2, c2.AddrV4+":8080")
		go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "peer") }))
		before := refused(t, node, refusedPeers)
		if out, err := curl(tn.cli1, "--max-time", "2", "http://"+c2.AddrV4+":8080/"); err == nil {
			t.Fatalf("a peer reached another peer: %s", out)
		}
		if after := refused(t, node, refusedPeers); after <= before {
			t.Errorf("peer-to-peer refusals counted %d → %d", before, after)
		}
	})
	t.Run("conns", func(t *testing.T) { tunConns(t, tn, node, c2.ID) })
	t.Run("egress policy", func(t *testing.T) {
		for _, target := range []string{denied + "/hello", "http://" + uplinkAddr + ":1/", "http://10.66.0.1:1/"} {
			before := refused(t, node, refusedEgress) + refused(t, node, refusedPeers)
			if out, err := curl(tn.cli1, "--max-time", "2", target); err == nil {
				t.Errorf("%s reached: %s", target, out)
			}
			if after := refused(t, node, refusedEgress) + refused(t, node, refusedPeers); after <= before {
				t.Errorf("%s: refusal not counted (%d → %d)", target, before, after)
			}
		}
	})
	t.Run("speed limit", func(t *testing.T) {
		c := c1
		c.Version, c.Limits.SpeedBps = 2, 256<<10
		node.apply(t, c, c2)
		start := time.Now()
		out, err := curl(tn.cli1, "--max-time", "20", "-o", "/dev/null", "-w", "%{size_download}", web+"/bytes?n=1048576")
		took := time.Since(start)
		if err != nil || out != "1048576" {
			t.Fatalf("limited download: %v %s", err, out)
		}
		// 1 MiB at 256 KiB/s, less a 64 KiB burst: at least ~3.7 s.
		if took < 3*time.Second {
			t.Errorf("1 MiB at 256 KiB/s took only %v", took)
		}
		t.Logf("1 MiB at 256 KiB/s took %v", took.Round(time.Millisecond))
		node.apply(t, c1, c2)
	})
	t.Run("max conns", func(t *testing.T) {
		hold := listenIn(t, tn.world, worldAddr+":0")
		go func() {
			for {
				c, err := hold.Accept()
				if err != nil {
					return
				}
				t.Cleanup(func() { c.Close() })
			}
		}()
		c := c1
		c.Version, c.Limits.MaxConns = 3, 2
		node.apply(t, c, c2)
		before := refused(t, node, refusedConns)
		var open []net.Conn
		defer func() {
			for _, c := range open {
				c.Close()
			}
		}()
		dial := func() error {
			return inNetns(tn.cli1, func() error {
				c, err := net.DialTimeout("tcp", hold.Addr().String(), 2*time.Second)
				if err == nil {
					open = append(open, c)
				}
				return err
			})
		}
		for i := range 2 {
			if err := dial(); err != nil {
				t.Fatalf("connection %d of 2: %v", i+1, err)
			}
		}
		if err := dial(); err == nil {
			t.Fatal("a third connection passed MaxConns 2")
		}
		if after := refused(t, node, refusedConns); after <= before {
			t.Errorf("max_conns refusals counted %d → %d", before, after)
		}
		node.apply(t, c1, c2)
		if err := dial(); err != nil {
			t.Errorf("after lifting the limit: %v", err)
		}
	})
	t.Run("revoke", func(t *testing.T) {
		if _, err := curl(tn.cli2, web+"/hello"); err != nil {
			t.Fatalf("before revocation: %v", err)
		}
		streaming := streamFromWorld(t, tn)
		revoked := time.Now()
		node.apply(t, c1)
		select {
		case err := <-streaming:
			t.Logf("the revoked peer's open flow ended %v after the revocation: %v", time.Since(revoked).Round(time.Millisecond), err)
		case <-time.After(2 * time.Second):
			t.Error("the revoked peer's open flow still takes data 2 s after the revocation")
		}
		// curl gives up after 2 s (--max-time): that it fails is the
		// check; how long it took is curl's timer plus its start-up.
		if out, err := curl(tn.cli2, "--max-time", "2", web+"/hello"); err == nil {
			t.Fatalf("a revoked peer still fetches pages: %s", out)
		}
		if node.metric(t, "usipipo_wireguard_peers_installed") != "1" {
			t.Error("peers installed after revocation")
		}
	})
	t.Run("refresh", func(t *testing.T) {
		// The default route moves to another uplink and back: the
		// masquerade follows it, and traffic flows again.
		run(t, "ip", "-n", tn.srv, "link", "add", "up0", "type", "veth", "peer", "name", "up1")
		run(t, "ip", "-n", tn.srv, "link", "set", "up0", "up")
		run(t, "ip", "-n", tn.srv, "link", "set", "up1", "up")
		run(t, "ip", "-n", tn.srv, "route", "replace", "default", "dev", "up0")
		node.call(t, tunRequest{Op: "refresh"})
		if l := fwListing(t, tn.srv, fw); !strings.Contains(l, `"up0"`) && !strings.Contains(l, "-o up0 ") {
			t.Fatalf("the refreshed rules do not masquerade out of the new uplink:\n%s", l)
		}
		run(t, "ip", "-n", tn.srv, "route", "replace", "default", "via", worldAddr)
		node.call(t, tunRequest{Op: "refresh"})
		if l := fwListing(t, tn.srv, fw); strings.Contains(l, "up0") {
			t.Fatalf("the refreshed rules still name the old uplink:\n%s", l)
		}
		if out, err := curl(tn.cli1, web+"/hello"); err != nil || out != "hello through the tunnel" {
			t.Fatalf("after the refresh: %v %s", err, out)
		}
	})
	t.Run("stop and restart", func(t *testing.T) {
		first := fwListing(t, tn.srv, fw)
		if !strings.Contains(first, "MASQUERADE") && !strings.Contains(first, "masquerade") {
			t.Fatalf("the firewall lacks its rules:\n%s", first)
		}
		node.close(t)
		if out := fwListing(t, tn.srv, fw); out != "" {
			t.Fatalf("the firewall rules outlived the server:\n%s", out)
		}
		if out, _ := nsOut(tn.srv, nil, "ip", "link", "show", DefaultIface); !strings.Contains(out, "does not exist") {
			t.Fatalf("the interface outlived the server: %s", out)
		}
		// A crash leaves rules behind; the next start replaces them.
		leftover(t, tn.srv, fw)
		node2 := startTunNode(t, tn.srv, worldAddr+"/32")
		if second := fwListing(t, tn.srv, fw); second != fresh {
			t.Errorf("restart over leftover rules:\n%s\nwant what a fresh start installs:\n%s", second, fresh)
		}
		node2.close(t)
	})
}

// refused reads usipipo_wireguard_refused_flows_total for reason.
func refused(t testing.TB, n *tunNode, reason string) int {
	t.Helper()
	var v int
	eventually(t, 3*time.Second, "reading refusals", func() bool {
		s := n.metric(t, `usipipo_wireguard_refused_flows_total{reason="`+reason+`"}`)
		var err error
		v, err = strconv.Atoi(s)
		return err == nil
	})
	return v
}

var (
	emptyLines = regexp.MustCompile(`(?m)^\s*\n`)
	nftCounts  = regexp.MustCompile(`packets \d+ bytes \d+`)
	iptCounts  = regexp.MustCompile(`\[\d+:\d+\]`)
)

// fwListing lists the server's firewall rules in ns ("" when there are
// none), counters left out.
func fwListing(t testing.TB, ns, fw string) string {
	if fw == "nft" {
		out, err := nsOut(ns, nil, "nft", "list", "table", "inet", fwTable)
		if err != nil {
			return ""
		}
		return emptyLines.ReplaceAllString(nftCounts.ReplaceAllString(out, ""), "")
	}
	var b strings.Builder
	for _, save := range []string{"iptables-save", "ip6tables-save"} {
		out, err := nsOut(ns, nil, save)
		if err != nil {
			t.Fatalf("%s: %v %s", save, err, out)
		}
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, "USIPIPO") {
				b.WriteString(iptCounts.ReplaceAllString(l, "") + "\n")
			}
		}
	}
	return b.String()
}

// leftover installs what a crashed server would leave: a stale table, or
// stale chains and a jump to them.
func leftover(t testing.TB, ns, fw string) {
	script, tool := "table inet "+fwTable+" {\n chain forward { type filter hook forward priority 0; drop; }\n}\n", "nft"
	args := []string{"-f", "-"}
	if fw != "nft" {
		script, tool = "*filter\n:"+iptFwd+" - [0:0]\n-A "+iptFwd+" -j DROP\n-I FORWARD 1 -j "+iptFwd+"\nCOMMIT\n", "iptables-restore"
		args = []string{"--noflush"}
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, tool}, args...)...)
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("leftover rules: %v %s", err, out)
	}
}

// startWorldHTTP serves /hello and /bytes on addr in namespace ns.
func startWorldHTTP(t testing.TB, ns, addr string) string {
	ln := listenIn(t, ns, addr+":0")
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello through the tunnel") })
	mux.HandleFunc("/bytes", func(w http.ResponseWriter, r *http.Request) {
		var n int
		fmt.Sscan(r.URL.Query().Get("n"), &n)
		w.Write(make([]byte, n))
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// startWorldUDPEcho echoes datagrams on worldAddr in namespace ns.
func startWorldUDPEcho(t testing.TB, ns string) string {
	var pc net.PacketConn
	if err := inNetns(ns, func() (err error) { pc, err = net.ListenPacket("udp", worldAddr+":0"); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 65535)
		for {
			n, a, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], a)
		}
	}()
	return pc.LocalAddr().String()
}

// wgQuickUp brings the node's client config for cred up in namespace ns
// with wg-quick (wireguard-go), the server at endpoint.
func wgQuickUp(t testing.TB, ns string, node *tunNode, cred plane.Credential, sec Secret, endpoint string) {
	t.Helper()
	conf := ClientConfig{Private: sec.Private, PSK: sec.PSK, AddrV4: cred.AddrV4, AddrV6: cred.AddrV6,
		DNS: []string{gateway(DefaultPoolV4).String()}, ServerKey: node.pub,
		Endpoint: fmt.Sprintf("%s:%d", endpoint, node.port), Keepalive: 25}.Render()
	dir := t.TempDir()
	// The interface is named after the namespace: wireguard-go's control
	// socket (/var/run/wireguard/NAME.sock) is shared by all namespaces, so
	// tests and benchmarks running at once must not share a name.
	path := filepath.Join(dir, "w"+strings.TrimPrefix(ns, "ust")+".conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	etc := filepath.Join("/etc/netns", ns)
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(etc) })
	if err := os.WriteFile(filepath.Join(etc, "resolv.conf"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	shim := filepath.Join(dir, "bin")
	os.Mkdir(shim, 0o755)
	if err := os.WriteFile(filepath.Join(shim, "resolvconf"), []byte("#!/bin/sh\n[ \"$1\" = -a ] && cat > /etc/resolv.conf\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + shim + ":" + os.Getenv("PATH"), "WG_QUICK_USERSPACE_IMPLEMENTATION=wireguard-go", "WG_SUDO=1"}
	if out, err := nsOut(ns, env, "wg-quick", "up", path); err != nil {
		t.Fatalf("wg-quick up: %v\n%s", err, out)
	}
	t.Cleanup(func() { nsOut(ns, env, "wg-quick", "down", path) })
}

// udpRoundTrip sends a datagram to addr and waits for its echo.
func udpRoundTrip(addr string) error {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	msg := []byte("datagram through the NAT")
	for range 3 {
		if _, err := c.Write(msg); err != nil {
			return err
		}
		c.SetReadDeadline(time.Now().Add(time.Second))
		buf := make([]byte, 100)
		n, err := c.Read(buf)
		if err == nil && string(buf[:n]) == string(msg) {
			return nil
		}
	}
	return fmt.Errorf("no echo from %s", addr)
}
