//go:build linux

package node

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usipipo/usipipo/app/config"
)

const nodeTunChildEnv = "USIPIPO_NODE_TUN_CHILD"

// TestServeTunMode starts a node with --wg-mode tun, then auto, inside a
// network namespace of its own (this test binary re-run under `ip netns
// exec`): WireGuard comes up on a kernel interface with its firewall, which
// is gone once the node stops. The host's network is not touched.
func TestServeTunMode(t *testing.T) {
	if os.Getenv(nodeTunChildEnv) != "" {
		serveTunChild(t)
		return
	}
	if testing.Short() {
		t.Skip("slow: a network namespace")
	}
	if os.Geteuid() != 0 {
		t.Skip("tun mode needs root for a network namespace")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skip("no /dev/net/tun")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s (Debian iproute2, nftables)", tool)
		}
	}
	ns := fmt.Sprintf("usn%d", os.Getpid()%100000)
	sh := func(args ...string) {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v %s", args, err, out)
		}
	}
	sh("netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	// An uplink with a default route: tun mode masquerades out of it.
	sh("-n", ns, "link", "set", "lo", "up")
	sh("-n", ns, "link", "add", "up0", "type", "veth", "peer", "name", "up1")
	sh("-n", ns, "addr", "add", "198.51.100.1/24", "dev", "up0")
	sh("-n", ns, "link", "set", "up0", "up")
	sh("-n", ns, "link", "set", "up1", "up")
	sh("-n", ns, "route", "add", "default", "via", "198.51.100.2")
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run", "^TestServeTunMode$", "-test.v")
	cmd.Env = append(os.Environ(), nodeTunChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestServeTunMode") {
		t.Fatalf("the node in a namespace: %v\n%s", err, out)
	}
	t.Logf("the node in a namespace:\n%s", out)
	if out, err := exec.Command("ip", "netns", "exec", ns, "nft", "list", "table", "inet", "usipipo").CombinedOutput(); err == nil {
		t.Fatalf("the firewall table outlived the node:\n%s", out)
	}
}

// serveTunChild runs in the namespace.
func serveTunChild(t *testing.T) {
	for _, mode := range []string{config.WGModeTUN, config.WGModeAuto} {
		data := filepath.Join(t.TempDir(), "data")
		cfg, err := config.Parse([]string{"--data", data, "--http", "127.0.0.1:0", "--wg-listen", "127.0.0.1:0", "--wg-mode", mode,
			"--ss-listen", "127.0.0.1:0", "--mtproto-listen", "127.0.0.1:0", "--public-host", "vpn.test"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		r := start(t, cfg)
		if !strings.Contains(r.logs.String(), `"action":"wireguard_mode"`) || !strings.Contains(r.logs.String(), `"mode":"tun"`) {
			t.Fatalf("--wg-mode %s did not log tun mode:\n%s", mode, r.logs.String())
		}
		if out, err := exec.Command("ip", "link", "show", "usipipo0").CombinedOutput(); err != nil {
			t.Fatalf("--wg-mode %s: no usipipo0: %v %s", mode, err, out)
		}
		if out, err := exec.Command("nft", "list", "table", "inet", "usipipo").CombinedOutput(); err != nil || !strings.Contains(string(out), "masquerade") {
			t.Fatalf("--wg-mode %s: firewall: %v %s", mode, err, out)
		}
		r.stop()
		if out, err := exec.Command("nft", "list", "table", "inet", "usipipo").CombinedOutput(); err == nil {
			t.Fatalf("--wg-mode %s: the table outlived the node:\n%s", mode, out)
		}
	}
}

const nodeNoCapEnv = "USIPIPO_NODE_NO_NET_ADMIN"

// TestWGModeWithoutCapability re-runs itself without CAP_NET_ADMIN (setpriv
// drops it from the bounding set): tun refuses and says why, auto falls
// back to netstack and says why.
func TestWGModeWithoutCapability(t *testing.T) {
	if os.Getenv(nodeNoCapEnv) != "" {
		_, _, err := wgMode(config.WGModeTUN)
		if err == nil || !strings.Contains(err.Error(), "CAP_NET_ADMIN") || !strings.Contains(err.Error(), "doctor") {
			t.Fatalf("--wg-mode tun without CAP_NET_ADMIN: %v", err)
		}
		mode, why, err := wgMode(config.WGModeAuto)
		if err != nil || mode.String() != "netstack" || !strings.Contains(why, "CAP_NET_ADMIN") {
			t.Fatalf("auto without CAP_NET_ADMIN: %v %q %v", mode, why, err)
		}
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("dropping a capability to test its absence needs root")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("no setpriv (Debian util-linux)")
	}
	cmd := exec.Command("setpriv", "--bounding-set", "-net_admin", os.Args[0], "-test.run", "^TestWGModeWithoutCapability$", "-test.v")
	cmd.Env = append(os.Environ(), nodeNoCapEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestWGModeWithoutCapability") {
		t.Fatalf("without CAP_NET_ADMIN: %v\n%s", err, out)
	}
	// With it (we are root): auto picks tun where a firewall tool exists.
	if mode, why, err := wgMode(config.WGModeAuto); err != nil || (mode.String() != "tun" && !strings.Contains(why, "netstack")) {
		t.Fatalf("auto as root: %v %q %v", mode, why, err)
	}
}
