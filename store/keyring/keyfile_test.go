package keyring

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeyFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "node.key")
	k := testKey(t, 1)
	if err := WriteKeyFile(p, k); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %o, want 600", st.Mode().Perm())
	}
	b, _ := os.ReadFile(p)
	if string(b) != hex.EncodeToString(k[:])+"\n" {
		t.Fatalf("file content %q is not hex+newline", b)
	}
	got, err := LoadKeyFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(k) {
		t.Fatal("loaded key differs")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("temporary files left behind: %v", ents)
	}
}

func TestWriteKeyFileRefusesOverwrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "node.key")
	k1, k2 := testKey(t, 1), testKey(t, 2)
	if err := WriteKeyFile(p, k1); err != nil {
		t.Fatal(err)
	}
	if err := WriteKeyFile(p, k2); !errors.Is(err, ErrExists) {
		t.Fatalf("overwrite: %v, want ErrExists", err)
	}
	if got, _ := LoadKeyFile(p); !got.Equal(k1) {
		t.Fatal("existing key was replaced")
	}
	// A dangling symlink counts as existing too: never write through it.
	link := filepath.Join(dir, "link.key")
	if err := os.Symlink(filepath.Join(dir, "nowhere"), link); err != nil {
		t.Fatal(err)
	}
	if err := WriteKeyFile(link, k2); !errors.Is(err, ErrExists) {
		t.Fatalf("symlink: %v, want ErrExists", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Fatalf("temporary files left behind: %v", ents)
	}
	if err := WriteKeyFile(filepath.Join(dir, "no", "such", "dir"), k1); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
}

func TestPublishNoReplaceRace(t *testing.T) {
	// Both the hard-link path and the fallback refuse an existing target.
	dir := t.TempDir()
	tmp, dst := filepath.Join(dir, "tmp"), filepath.Join(dir, "dst")
	os.WriteFile(tmp, []byte("new"), 0o600)
	os.WriteFile(dst, []byte("old"), 0o600)
	if err := publishNoReplace(tmp, dst); !errors.Is(err, ErrExists) {
		t.Fatalf("got %v", err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "old" {
		t.Fatal("target replaced")
	}
}

func TestLoadKeyFileModes(t *testing.T) {
	dir := t.TempDir()
	k := testKey(t, 3)
	for _, mode := range []fs.FileMode{0o644, 0o640, 0o604, 0o660, 0o606, 0o610, 0o601, 0o777} {
		p := filepath.Join(dir, "k"+mode.String())
		if err := os.WriteFile(p, []byte(hex.EncodeToString(k[:])), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadKeyFile(p)
		if !errors.Is(err, ErrKeyFileMode) {
			t.Fatalf("mode %o: %v, want ErrKeyFileMode", mode, err)
		}
		if msg := err.Error(); !strings.Contains(msg, p) || !strings.Contains(msg, "chmod 600") {
			t.Errorf("mode %o: error %q should name the path and say chmod 600", mode, msg)
		}
	}
	for _, mode := range []fs.FileMode{0o600, 0o400} {
		p := filepath.Join(dir, "ok"+mode.String())
		os.WriteFile(p, k[:], 0o600)
		os.Chmod(p, mode)
		if got, err := LoadKeyFile(p); err != nil || !got.Equal(k) {
			t.Fatalf("mode %o: %v", mode, err)
		}
	}
	if _, err := LoadKeyFile(dir); !errors.Is(err, ErrKeyFileFormat) && !errors.Is(err, ErrKeyFileMode) {
		t.Fatalf("directory accepted: %v", err)
	}
	if _, err := LoadKeyFile(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
}

func TestLoadKeyFileFormats(t *testing.T) {
	dir := t.TempDir()
	k := testKey(t, 4)
	h := hex.EncodeToString(k[:])
	good := map[string][]byte{
		"raw":     k[:],
		"hex":     []byte(h),
		"hexnl":   []byte(h + "\n"),
		"hexcrlf": []byte(h + "\r\n"),
		"HEX":     []byte(strings.ToUpper(h) + "\n"),
	}
	bad := map[string][]byte{
		"empty":    nil,
		"raw31":    k[:31],
		"raw33":    append(bytes.Clone(k[:]), 0),
		"hex63":    []byte(h[:63]),
		"hex65":    []byte(h + "0"),
		"hex2nl":   []byte(h + "\n\n"),
		"nonhex":   []byte("g" + h[1:] + "\n"),
		"spaces":   []byte(" " + h),
		"zero":     make([]byte, 32),
		"zerohex":  []byte(strings.Repeat("0", 64) + "\n"),
		"huge":     bytes.Repeat([]byte("a"), 1<<20),
		"hexlong":  []byte(h + h),
		"leadnl":   []byte("\n" + h),
		"trailtab": []byte(h + "\t"),
	}
	for name, b := range good {
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o600)
		got, err := LoadKeyFile(p)
		if err != nil || !got.Equal(k) {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, b := range bad {
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o600)
		_, err := LoadKeyFile(p)
		if !errors.Is(err, ErrKeyFileFormat) {
			t.Errorf("%s: %v, want ErrKeyFileFormat", name, err)
		} else if strings.Contains(err.Error(), h) {
			t.Errorf("%s: error leaks key material", name)
		}
	}
}

func TestLoadNodeKey(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")

	_, _, err := LoadNodeKey(data, "", false, nil)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("no key, no create: %v", err)
	}
	if _, err := os.Stat(data); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("data dir created without allowCreate")
	}

	k1, created, err := LoadNodeKey(data, "", true, detRand(7))
	if err != nil || !created {
		t.Fatalf("create: %v created=%v", err, created)
	}
	if st, _ := os.Stat(filepath.Join(data, NodeKeyFile)); st.Mode().Perm() != 0o600 {
		t.Fatalf("node.key mode %o", st.Mode().Perm())
	}
	if st, _ := os.Stat(data); st.Mode().Perm() != 0o700 {
		t.Fatalf("data dir mode %o", st.Mode().Perm())
	}
	k2, created, err := LoadNodeKey(data, "", true, detRand(8))
	if err != nil || created || !k2.Equal(k1) {
		t.Fatalf("reload: %v created=%v same=%v", err, created, k2.Equal(k1))
	}

	// An empty credentials directory falls back to the data dir.
	cred := t.TempDir()
	k3, created, err := LoadNodeKey(data, cred, false, nil)
	if err != nil || created || !k3.Equal(k1) {
		t.Fatalf("cred fallback: %v", err)
	}

	// A credential wins, and is not mode-checked (systemd owns it).
	ck := testKey(t, 9)
	cp := filepath.Join(cred, NodeKeyFile)
	os.WriteFile(cp, ck[:], 0o644)
	os.Chmod(cp, 0o444)
	k4, created, err := LoadNodeKey(data, cred, true, nil)
	if err != nil || created || !k4.Equal(ck) {
		t.Fatalf("credential: %v created=%v", err, created)
	}
	// ...but its size is.
	os.Chmod(cp, 0o600)
	os.WriteFile(cp, ck[:20], 0o600)
	if _, _, err := LoadNodeKey(data, cred, true, nil); !errors.Is(err, ErrKeyFileFormat) {
		t.Fatalf("short credential: %v", err)
	}

	// A data-dir key with open permissions is refused, not replaced.
	os.Chmod(filepath.Join(data, NodeKeyFile), 0o644)
	if _, _, err := LoadNodeKey(data, "", true, nil); !errors.Is(err, ErrKeyFileMode) {
		t.Fatalf("open mode: %v", err)
	}

	// A failing randomness source is reported, nothing written.
	d2 := filepath.Join(t.TempDir(), "d2")
	if _, _, err := LoadNodeKey(d2, "", true, errReader{errors.New("boom")}); err == nil {
		t.Fatal("failing rand accepted")
	}
	if _, err := os.Stat(filepath.Join(d2, NodeKeyFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("key written despite failing rand")
	}
}
