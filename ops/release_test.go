package ops

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

var releaseArches = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

func TestReleaseBinaries(t *testing.T) {
	dist := release(t)
	sums := readSums(t, dist)
	for arch, machine := range releaseArches {
		name := "usipipo-linux-" + arch
		p := filepath.Join(dist, name)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := sha256.Sum256(b); sums[name] != hex.EncodeToString(got[:]) {
			t.Errorf("%s: SHA256SUMS says %q, file hashes to %x", name, sums[name], got)
		}
		f, err := elf.NewFile(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if f.Machine != machine {
			t.Errorf("%s: machine %v, want %v", name, f.Machine, machine)
		}
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP || prog.Type == elf.PT_DYNAMIC {
				t.Errorf("%s: not static (%v)", name, prog.Type)
			}
		}
		for _, s := range f.Sections {
			if s.Name == ".note.go.buildid" || s.Name == ".note.gnu.build-id" {
				t.Errorf("%s: carries a build id (%s)", name, s.Name)
			}
		}
		if !bytes.Contains(b, []byte(testVersion)) {
			t.Errorf("%s: version %s not stamped", name, testVersion)
		}
		if arch == runtime.GOARCH {
			if out := run(t, "", nil, p, "version"); strings.TrimSpace(out) != "usipipo "+testVersion {
				t.Errorf("%s version: %q", name, out)
			}
		}
	}
	unit, err := os.ReadFile(filepath.Join(dist, "usipipo.service"))
	if err != nil {
		t.Fatal(err)
	}
	if got := sha256.Sum256(unit); sums["usipipo.service"] != hex.EncodeToString(got[:]) {
		t.Errorf("usipipo.service: SHA256SUMS says %q, file hashes to %x", sums["usipipo.service"], got)
	}
	if len(sums) != len(releaseArches)+1 {
		t.Errorf("SHA256SUMS lists %d files, want the binaries and the unit", len(sums))
	}
}

// TestReleaseReproducible builds the release a second time from a copy of
// the source at another path and compares every byte. The copy shares the
// build cache unless USIPIPO_RELEASE_COLD=1 (then every package is compiled
// again); it always compiles this module's packages anew (their source path
// differs) and links anew (no build id means no up-to-date check).
func TestReleaseReproducible(t *testing.T) {
	first := release(t)
	src := filepath.Join(t.TempDir(), "elsewhere", "usipipo")
	copyTree(t, repoRoot(t), src)
	second := t.TempDir()
	env := []string{}
	if os.Getenv("USIPIPO_RELEASE_COLD") == "1" {
		env = append(env, "GOCACHE="+t.TempDir())
	}
	run(t, src, env, "make", "release", "DIST="+second, "VERSION="+testVersion)
	for _, name := range []string{"usipipo-linux-amd64", "usipipo-linux-arm64", "usipipo.service", "SHA256SUMS"} {
		a, err := os.ReadFile(filepath.Join(first, name))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(second, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between two builds of the same source (%d vs %d bytes)", name, len(a), len(b))
		}
	}
}

func readSums(t *testing.T, dist string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		sum, name, ok := strings.Cut(line, "  ")
		if !ok || len(sum) != 64 {
			t.Fatalf("SHA256SUMS line %q is not sha256sum's format", line)
		}
		sums[name] = sum
	}
	return sums
}

// copyTree copies the regular files of the source tree, without the
// repository's history and build outputs.
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	skip := map[string]bool{".git": true, "bin": true, "data": true, "dist": true, ".bench": true}
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			if skip[rel] {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		return copyFile(p, filepath.Join(to, rel))
	})
	if err != nil {
		t.Fatalf("copying the source: %v", err)
	}
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fi.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copying %s: %w", from, err)
	}
	return out.Close()
}
