//go:build linux

package wireguard

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usipipo/usipipo/app/plane"
)

// TestWGQuick brings up the very .conf a user imports with wg-quick inside a
// network namespace (kernel WireGuard, or wireguard-go where the module is
// missing) and fetches pages through the server with curl, by address and
// by a name resolved through the tunnel's DNS.
func TestWGQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: a namespace and wg-quick")
	}
	for _, tool := range []string{"wg-quick", "wg", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s (Debian wireguard-tools, curl)", tool)
		}
	}
	ns := newNetns(t)
	srv := newTestServerOn(t, vethHost+":0", loopback, Options{})
	cred, sec := newCred(t, "wq", 0)
	if err := srv.Apply(context.Background(), []plane.Credential{cred}); err != nil {
		t.Fatal(err)
	}
	conf := ClientConfig{Private: sec.Private, PSK: sec.PSK, AddrV4: cred.AddrV4, AddrV6: cred.AddrV6,
		DNS: []string{srv.gw4.String()}, ServerKey: srv.PublicKey(), Endpoint: srv.addr.String(), Keepalive: 25}.Render()

	dir := t.TempDir()
	// wireguard-go's control socket (/var/run/wireguard/NAME.sock) is
	// shared by all namespaces: a name of this process's own.
	path := filepath.Join(dir, fmt.Sprintf("wq%d.conf", os.Getpid()%100000))
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	// wg-quick hands DNS = to resolvconf; this one writes the namespace's
	// resolv.conf, which `ip netns exec` mounts over /etc/resolv.conf.
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
	nsRun := func(args ...string) (string, error) {
		cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := nsRun("wg-quick", "up", path)
	if err != nil {
		t.Fatalf("wg-quick up: %v\n%s", err, out)
	}
	t.Logf("wg-quick up:\n%s", out)
	t.Cleanup(func() { nsRun("wg-quick", "down", path) })

	web := startHTTP(t)
	out, err = nsRun("curl", "-sS", "--max-time", "10", web+"/hello")
	if err != nil || out != "hello through the tunnel" {
		t.Fatalf("curl by address: %v\n%s", err, out)
	}
	port := netip.MustParseAddrPort(strings.TrimPrefix(web, "http://")).Port()
	out, err = nsRun("curl", "-sS", "--max-time", "10", fmt.Sprintf("http://www.example.test:%d/hello", port))
	if err != nil || out != "hello through the tunnel" {
		t.Fatalf("curl by name: %v\n%s", err, out)
	}
}
