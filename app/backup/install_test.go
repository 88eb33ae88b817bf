package backup

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/usipipo/usipipo/store"
)

// Install refuses while a node has the database open, and changes nothing.
func TestInstallRefusesLocked(t *testing.T) {
	src := newStore(t)
	addUsers(t, src, newIDs(6), 5)
	backup, _ := writeBackup(t, src, newKey(t))
	m, path, err := ReadWithPassKey(context.Background(), bytes.NewReader(backup), passKey(t), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}

	dataDir := t.TempDir()
	running := openStore(t, filepath.Join(dataDir, DBName))
	mine := addUsers(t, running, newIDs(7), 1)
	err = Install(path, dataDir, m, newKey(t), nil)
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("got %v, want store.ErrLocked", err)
	}
	t.Log(err)
	if _, err := os.Stat(path); err != nil {
		t.Errorf("verified file gone after a refused Install: %v", err)
	}
	if _, err := running.User(mine[0]); err != nil {
		t.Errorf("running database changed: %v", err)
	}
	es, _ := os.ReadDir(dataDir)
	if len(es) != 1 {
		t.Errorf("data dir holds %d entries, want only %s", len(es), DBName)
	}
}

// Install into an empty data dir, from a file on another directory, with a
// manifest that has no usable key.
func TestInstallFreshAndBadManifest(t *testing.T) {
	src := newStore(t)
	users := addUsers(t, src, newIDs(8), 5)
	backup, _ := writeBackup(t, src, newKey(t))
	m, path, err := ReadWithPassKey(context.Background(), bytes.NewReader(backup), passKey(t), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(t.TempDir(), "data")

	bad := *m
	bad.DataKey = bad.DataKey[:31]
	if err := Install(path, dataDir, &bad, newKey(t), nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("short data key: got %v", err)
	}
	if err := Install(path, dataDir, m, newKey(t), nil); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dataDir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data dir: %v %v", fi.Mode(), err)
	}
	got := openStore(t, filepath.Join(dataDir, DBName))
	if _, err := got.User(users[4]); err != nil {
		t.Fatal(err)
	}
	if pre, _ := filepath.Glob(filepath.Join(dataDir, "*.pre-restore-*")); len(pre) != 0 {
		t.Errorf("pre-restore copy of nothing: %v", pre)
	}
}

// Two restores in the same second keep both previous databases; the copy
// used across file systems moves the file whole.
func TestKeepPreviousAndCopy(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, DBName)
	for i, body := range []string{"one", "two"} {
		if err := os.WriteFile(target, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := keepPrevious(target, epoch); err != nil {
			t.Fatalf("copy %d: %v", i, err)
		}
		os.Remove(target)
	}
	for name, want := range map[string]string{
		DBName + ".pre-restore-20260102T030405Z":   "one",
		DBName + ".pre-restore-20260102T030405Z-2": "two",
	} {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(b) != want {
			t.Errorf("%s: %q, %v", name, b, err)
		}
	}

	from, to := filepath.Join(dir, "from"), filepath.Join(dir, "to")
	os.WriteFile(from, []byte("database"), 0o600)
	os.WriteFile(to, nil, 0o600)
	if err := copyFile(from, to); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(to); string(b) != "database" {
		t.Errorf("copied %q", b)
	}
	if _, err := os.Stat(from); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("source kept: %v", err)
	}
}
