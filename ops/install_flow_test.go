package ops

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestInstallLifecycle installs, upgrades, survives a failed upgrade and a
// new version that does not start, uninstalls and purges, in one root.
func TestInstallLifecycle(t *testing.T) {
	dist := release(t)
	in := newInstaller(t, serve(t, dist))
	binary := readFile(t, filepath.Join(dist, "usipipo-linux-"+runtime.GOARCH))
	unit := readFile(t, filepath.Join(repoRoot(t), unitPath))

	// Fresh install.
	out, calls := in.mustRun([]string{"USIPIPO_BOT_TOKEN=123:abc"})
	if !bytes.Equal(readFile(t, in.binPath), binary) || mode(t, in.binPath) != 0o755 {
		t.Fatal("installed binary is not the release's (mode 0755)")
	}
	if !bytes.Equal(readFile(t, filepath.Join(in.root, "etc/systemd/system/usipipo.service")), unit) {
		t.Fatal("installed unit differs from systemd/usipipo.service")
	}
	if m := mode(t, in.dataDir); m != 0o700 {
		t.Fatalf("data dir mode %o", m)
	}
	for _, f := range []string{"usipipo.db", "node.key"} {
		if _, err := os.Stat(filepath.Join(in.dataDir, f)); err != nil {
			t.Fatalf("init did not run: %v", err)
		}
	}
	env := string(readFile(t, in.envPth))
	if mode(t, in.envPth) != 0o600 || !strings.Contains(env, "USIPIPO_MTPROTO_LISTEN=:443\n") || !strings.Contains(env, "USIPIPO_BOT_TOKEN=123:abc\n") {
		t.Fatalf("env file (mode %o):\n%s", mode(t, in.envPth), env)
	}
	sysctl := string(readFile(t, filepath.Join(in.root, "etc/sysctl.d/60-usipipo.conf")))
	if !strings.Contains(sysctl, "net.ipv4.ip_forward = 1") || !strings.Contains(sysctl, "net.ipv6.conf.all.forwarding = 1") {
		t.Fatalf("sysctl file:\n%s", sysctl)
	}
	mustHave(t, calls, "useradd --system --user-group", "chown -R usipipo:usipipo ROOT/var/lib/usipipo",
		"sysctl -p ROOT/etc/sysctl.d/60-usipipo.conf", "systemctl daemon-reload", "systemctl enable usipipo.service",
		"systemctl start usipipo.service")
	for _, want := range []string{"One-time password:", "Backup passphrase:", "ssh -N -L 8080:127.0.0.1:8080", "USIPIPO_BOT_TOKEN", testVersion} {
		if !strings.Contains(out, want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(in.dataDir, "initial-credentials.txt")); err == nil {
		t.Fatal("init wrote the secrets to a file although a terminal asked")
	}
	installed := in.tree()
	for p := range installed {
		if strings.HasSuffix(p, ".old") || strings.HasSuffix(p, ".new") || strings.HasSuffix(p, ".tmp") || strings.Contains(p, "lock") {
			t.Fatalf("leftover %s", p)
		}
	}

	// Re-run: upgrade in place, data and settings kept, no new secrets.
	upgradeBinary(t, in.binPath)
	if err := os.WriteFile(in.envPth, append([]byte(env), "USIPIPO_HTTP=127.0.0.1:9090\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	db := readFile(t, filepath.Join(in.dataDir, "usipipo.db"))
	key := readFile(t, filepath.Join(in.dataDir, "node.key"))
	out, calls = in.mustRun(nil)
	if !bytes.Equal(readFile(t, in.binPath), binary) {
		t.Fatal("upgrade did not replace the binary")
	}
	if !bytes.Equal(readFile(t, filepath.Join(in.dataDir, "usipipo.db")), db) || !bytes.Equal(readFile(t, filepath.Join(in.dataDir, "node.key")), key) {
		t.Fatal("upgrade changed the data")
	}
	if !strings.Contains(string(readFile(t, in.envPth)), "USIPIPO_HTTP=127.0.0.1:9090") {
		t.Fatal("upgrade lost the settings")
	}
	mustHave(t, calls, "systemctl restart usipipo.service", "systemctl daemon-reload")
	mustNotHave(t, calls, "useradd", "systemctl start", "systemctl enable")
	if strings.Contains(out, "One-time password") || !strings.Contains(out, "ssh -N -L 9090:127.0.0.1:9090") {
		t.Fatalf("upgrade output:\n%s", out)
	}

	// A mirror with a corrupt binary: refused, nothing changes.
	before := in.tree()
	bad := newInstaller(t, serve(t, corrupted(t, dist)))
	bad.root, bad.state = in.root, in.state
	bad.env = append(in.env[:len(in.env):len(in.env)], "USIPIPO_BASE_URL="+bad.url)
	out, calls, err := bad.run(nil)
	if err == nil || !strings.Contains(out, "checksum mismatch") {
		t.Fatalf("corrupt upgrade: %v\n%s", err, out)
	}
	mustNotHave(t, calls, "systemctl", "useradd", "chown", "sysctl")
	in.assertUntouched(before)

	// A new version that fails to start: the old binary serves again.
	old := upgradeBinary(t, in.binPath)
	before = in.tree()
	if err := os.WriteFile(filepath.Join(in.state, "fail-restart"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	out, calls, err = in.run(nil)
	if err == nil || !strings.Contains(out, "previous one is restored") {
		t.Fatalf("failed restart: %v\n%s", err, out)
	}
	if !bytes.Equal(readFile(t, in.binPath), old) {
		t.Fatal("the old binary was not restored")
	}
	if n := strings.Count(strings.Join(calls, "\n"), "systemctl restart usipipo.service"); n != 2 {
		t.Fatalf("%d restarts, want the failed one and the one of the old binary: %q", n, calls)
	}
	in.assertUntouched(before)
	if _, err := os.Stat(filepath.Join(in.state, "active")); err != nil {
		t.Fatal("the service is not running after the rollback")
	}

	// Uninstall keeps data and settings.
	_, calls = in.mustRun(nil, "--uninstall")
	mustHave(t, calls, "systemctl stop usipipo.service", "systemctl disable usipipo.service", "systemctl daemon-reload")
	for _, gone := range []string{"usr/local/bin/usipipo", "etc/systemd/system/usipipo.service", "etc/sysctl.d/60-usipipo.conf"} {
		if _, err := os.Stat(filepath.Join(in.root, gone)); !os.IsNotExist(err) {
			t.Fatalf("%s not removed: %v", gone, err)
		}
	}
	if !bytes.Equal(readFile(t, filepath.Join(in.dataDir, "usipipo.db")), db) || !strings.Contains(string(readFile(t, in.envPth)), "9090") {
		t.Fatal("uninstall touched the data or the settings")
	}

	// Installing again finds the node it left.
	out, calls = in.mustRun(nil)
	if strings.Contains(out, "One-time password") || !bytes.Equal(readFile(t, filepath.Join(in.dataDir, "usipipo.db")), db) {
		t.Fatalf("reinstall did not keep the node:\n%s", out)
	}
	mustHave(t, calls, "systemctl enable usipipo.service", "systemctl start usipipo.service")
	mustNotHave(t, calls, "useradd")

	// Purge removes the rest.
	_, calls = in.mustRun(nil, "--uninstall", "--purge")
	mustHave(t, calls, "userdel usipipo")
	for _, gone := range []string{"var/lib/usipipo", "etc/usipipo"} {
		if _, err := os.Stat(filepath.Join(in.root, gone)); !os.IsNotExist(err) {
			t.Fatalf("%s not purged: %v", gone, err)
		}
	}
}

// TestInstallRefuses checks that every refusal leaves the root as it was.
func TestInstallRefuses(t *testing.T) {
	dist := release(t)
	good := serve(t, dist)
	cases := []struct {
		name  string
		url   string
		extra []string
		setup func(in *installer)
		want  string
	}{
		{name: "wrong checksum", url: serve(t, corrupted(t, dist)), want: "checksum mismatch"},
		{name: "unsupported arch", url: good, extra: []string{"FAKE_ARCH=mips64"}, want: "unsupported architecture mips64"},
		{name: "unsupported system", url: good, extra: []string{"FAKE_OS=Darwin"}, want: "unsupported system Darwin"},
		{name: "no systemd", url: good, setup: func(in *installer) { os.RemoveAll(filepath.Join(in.root, "run/systemd/system")) }, want: "systemd is not running"},
		{name: "mirror down", url: good + "/nothing-here", want: "cannot download"},
		{name: "service fails to start", url: good, want: "failed to start", setup: func(in *installer) {
			os.WriteFile(filepath.Join(in.state, "fail-start"), nil, 0o644)
		}},
		{name: "interrupted", url: good, want: "undoing this run's changes", setup: func(in *installer) {
			os.WriteFile(filepath.Join(in.state, "interrupt-start"), nil, 0o644)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := newInstaller(t, c.url)
			if c.setup != nil {
				c.setup(in)
			}
			before := in.tree()
			out, calls, err := in.run(c.extra)
			if err == nil || !strings.Contains(out, c.want) {
				t.Fatalf("want a refusal with %q, got %v:\n%s", c.want, err, out)
			}
			in.assertUntouched(before)
			if _, err := os.Stat(filepath.Join(in.state, "user")); err == nil {
				t.Fatalf("the system user was left behind: %q", calls)
			}
			if c.setup == nil || c.name == "no systemd" {
				mustNotHave(t, calls, "systemctl", "useradd", "sysctl")
			}
		})
	}
}
