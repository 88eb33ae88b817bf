package ops

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
)

// fakeTools stands in for the commands that change the host: it records
// every call in $FAKE_LOG and keeps the state a real one would in
// $FAKE_STATE. A file $FAKE_STATE/fail-<verb> makes the next systemctl
// <verb> fail once (a unit that does not start); interrupt-<verb> sends the
// installer SIGTERM (the seller pressed ^C) as well.
const fakeTools = `#!/bin/sh
name=${0##*/}
echo "$name $*" >>"$FAKE_LOG"
case $name in
uname)
	case $1 in -s) echo "${FAKE_OS:-Linux}" ;; -m) echo "$FAKE_ARCH" ;; esac ;;
getent) [ -f "$FAKE_STATE/user" ] ;;
useradd) touch "$FAKE_STATE/user" ;;
userdel) rm -f "$FAKE_STATE/user" ;;
systemctl)
	case $1 in
	is-active) [ -f "$FAKE_STATE/active" ] ;;
	is-enabled) [ -f "$FAKE_STATE/enabled" ] ;;
	enable) touch "$FAKE_STATE/enabled" ;;
	disable) rm -f "$FAKE_STATE/enabled" ;;
	stop) rm -f "$FAKE_STATE/active" ;;
	start | restart)
		if [ -f "$FAKE_STATE/fail-$1" ]; then rm -f "$FAKE_STATE/fail-$1" "$FAKE_STATE/active"; exit 1; fi
		if [ -f "$FAKE_STATE/interrupt-$1" ]; then rm -f "$FAKE_STATE/interrupt-$1"; kill -TERM "$PPID"; exit 1; fi
		[ -f "$USIPIPO_ROOT/etc/systemd/system/usipipo.service" ] && [ -x "$USIPIPO_ROOT/usr/local/bin/usipipo" ] || exit 1
		touch "$FAKE_STATE/active" ;;
	esac ;;
esac
`

// installer runs scripts/install.sh under dash in a throwaway root.
type installer struct {
	t                        *testing.T
	root, state, log, fakes  string
	url                      string
	env                      []string
	dataDir, binPath, envPth string
}

func newInstaller(t *testing.T, url string) *installer {
	t.Helper()
	need(t, "dash", "dash")
	if _, err := os.Stat("/usr/bin/curl"); err != nil {
		need(t, "curl", "curl")
	}
	dir := t.TempDir()
	in := &installer{t: t, root: filepath.Join(dir, "root"), state: filepath.Join(dir, "state"),
		log: filepath.Join(dir, "calls.log"), fakes: filepath.Join(dir, "fakes"), url: url}
	// A root as a Linux server has it: the standard directories exist.
	std := []string{"run/systemd/system", "etc/systemd/system", "etc/sysctl.d", "usr/local/bin", "var/lib"}
	for _, d := range append([]string{in.state, in.fakes}, std...) {
		if !filepath.IsAbs(d) {
			d = filepath.Join(in.root, d)
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(in.fakes, "fake"), []byte(fakeTools), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"systemctl", "sysctl", "useradd", "userdel", "getent", "chown", "uname"} {
		if err := os.Symlink("fake", filepath.Join(in.fakes, tool)); err != nil {
			t.Fatal(err)
		}
		in.env = append(in.env, fmt.Sprintf("%s=%s", strings.ToUpper(tool), filepath.Join(in.fakes, tool)))
	}
	arch := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[runtime.GOARCH]
	in.env = append(in.env, "USIPIPO_ROOT="+in.root, "USIPIPO_BASE_URL="+url, "FAKE_LOG="+in.log,
		"FAKE_STATE="+in.state, "FAKE_ARCH="+arch)
	in.dataDir = filepath.Join(in.root, "var/lib/usipipo")
	in.binPath = filepath.Join(in.root, "usr/local/bin/usipipo")
	in.envPth = filepath.Join(in.root, "etc/usipipo/usipipo.env")
	return in
}

// run runs the installer with args and extra environment; it returns the
// output and the calls of the fake tools made by this run.
func (in *installer) run(extra []string, args ...string) (string, []string, error) {
	in.t.Helper()
	os.Remove(in.log)
	// As `curl -fsSL URL | sh -s -- ARGS` runs it: the script on stdin.
	script, err := os.Open(filepath.Join(repoRoot(in.t), "scripts/install.sh"))
	if err != nil {
		in.t.Fatal(err)
	}
	defer script.Close()
	cmd := exec.Command("dash", append([]string{"-s", "--"}, args...)...)
	cmd.Env = append(append(os.Environ(), in.env...), extra...)
	cmd.Stdin = script
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err = cmd.Run()
	out := buf.String()
	b, _ := os.ReadFile(in.log)
	var calls []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l != "" && !strings.HasPrefix(l, "uname ") {
			calls = append(calls, strings.ReplaceAll(l, in.root, "ROOT"))
		}
	}
	return out, calls, err
}

func (in *installer) mustRun(extra []string, args ...string) (string, []string) {
	in.t.Helper()
	out, calls, err := in.run(extra, args...)
	if err != nil {
		in.t.Fatalf("install.sh %v: %v\n%s", args, err, out)
	}
	return out, calls
}

// tree describes every file and directory under the root: path -> mode
// and content hash.
func (in *installer) tree() map[string]string {
	in.t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(in.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == in.root {
			return err
		}
		rel, _ := filepath.Rel(in.root, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		v := fi.Mode().String()
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v += fmt.Sprintf(" %x", sha256.Sum256(b))
		}
		m[rel] = v
		return nil
	})
	if err != nil {
		in.t.Fatal(err)
	}
	return m
}

func (in *installer) assertUntouched(before map[string]string) {
	in.t.Helper()
	after := in.tree()
	if fmt.Sprint(after) != fmt.Sprint(before) {
		in.t.Fatalf("the root changed:\nbefore %v\nafter  %v", keys(before), keys(after))
	}
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func has(calls []string, prefix string) bool {
	for _, c := range calls {
		if strings.HasPrefix(c, prefix) {
			return true
		}
	}
	return false
}

func mustHave(t *testing.T, calls []string, prefixes ...string) {
	t.Helper()
	for _, p := range prefixes {
		if !has(calls, p) {
			t.Errorf("no call %q in %q", p, calls)
		}
	}
}

func mustNotHave(t *testing.T, calls []string, prefixes ...string) {
	t.Helper()
	for _, p := range prefixes {
		if has(calls, p) {
			t.Errorf("unexpected call %q in %q", p, calls)
		}
	}
}

// serve serves dir over HTTP on 127.0.0.1:0 as a release mirror.
func serve(t *testing.T, dir string) string {
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	return srv.URL
}

// corrupted is a copy of the release whose binary for this machine no
// longer matches SHA256SUMS.
func corrupted(t *testing.T, dist string) string {
	dir := t.TempDir()
	copyTree(t, dist, dir)
	p := filepath.Join(dir, "usipipo-linux-"+runtime.GOARCH)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestInstallScriptIsPOSIX(t *testing.T) {
	script := filepath.Join(repoRoot(t), "scripts/install.sh")
	need(t, "dash", "dash")
	run(t, "", nil, "dash", "-n", script)
	need(t, "shellcheck", "shellcheck")
	run(t, "", nil, "shellcheck", "-s", "sh", script)
	if out, err := runErr("", nil, "dash", script, "--purge"); err == nil || !strings.Contains(out, "--purge goes with --uninstall") {
		t.Fatalf("--purge alone: %v\n%s", err, out)
	}
}

// upgradeBinary makes the installed binary look like an older release
// (another file that still runs), so that an upgrade must replace it.
func upgradeBinary(t *testing.T, p string) []byte {
	t.Helper()
	old := append(readFile(t, p), []byte("older release")...)
	if err := os.WriteFile(p, old, 0o755); err != nil {
		t.Fatal(err)
	}
	return old
}
