package ops

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// repoRoot is the repository's top directory (this package sits one below).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root not found: %v", err)
	}
	return root
}

// need skips the test unless tool is on PATH, naming the Debian package.
func need(t *testing.T, tool, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		t.Skipf("%s not found: apt-get install %s", tool, pkg)
	}
	return p
}

// run runs a command and fails the test with its output if it fails.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	out, err := runErr(dir, env, name, args...)
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return out
}

func runErr(dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	return buf.String(), err
}

// testVersion is stamped into every binary the tests build.
const testVersion = "v0.0.0-opstest"

var (
	releaseOnce sync.Once
	releaseDir  string
	releaseErr  error
	releaseOut  string
)

// release runs `make release` once per test binary into a shared temp dir
// and returns that dir (usipipo-linux-amd64, usipipo-linux-arm64,
// SHA256SUMS).
func release(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds release binaries; skipped under -short")
	}
	need(t, "make", "make")
	need(t, "sha256sum", "coreutils")
	releaseOnce.Do(func() {
		releaseDir, releaseErr = os.MkdirTemp("", "usipipo-release-")
		if releaseErr != nil {
			return
		}
		releaseOut, releaseErr = runErr(repoRoot(t), nil, "make", "release", "DIST="+releaseDir, "VERSION="+testVersion)
	})
	if releaseErr != nil {
		t.Fatalf("make release: %v\n%s", releaseErr, releaseOut)
	}
	return releaseDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if releaseDir != "" {
		os.RemoveAll(releaseDir)
	}
	os.Exit(code)
}
