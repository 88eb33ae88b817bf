package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/keyring"
)

// A backup read with the passphrase and installed for a new node key holds
// every record, and its wrapped data key opens with the new node key.
func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	dataKey := newKey(t)
	users := addUsers(t, st, newIDs(1), 50)
	backup, wm := writeBackup(t, st, dataKey)
	if wm.DBSize <= 0 || len(wm.DBSHA256) != 64 || wm.Schema != store.SchemaVersion || wm.Node != "n1" {
		t.Fatalf("manifest from Write: %+v", wm.LogValue())
	}

	restoreDir := t.TempDir()
	m, path, err := Read(ctx, bytes.NewReader(backup), []byte(testPassphrase), restoreDir)
	if err != nil {
		t.Fatal(err)
	}
	if m.DBSHA256 != wm.DBSHA256 || m.DBSize != wm.DBSize || !m.Created.Equal(wm.Created) || m.Version != "test" {
		t.Fatalf("manifest read %v, written %v", m.LogValue(), wm.LogValue())
	}
	if filepath.Dir(path) != restoreDir {
		t.Fatalf("verified file %s is not in %s", path, restoreDir)
	}

	// A data dir that already has a (different) database.
	dataDir := t.TempDir()
	old, err := store.Open(store.Options{Path: filepath.Join(dataDir, DBName)})
	if err != nil {
		t.Fatal(err)
	}
	oldUsers := addUsers(t, old, newIDs(2), 3)
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	nodeKey := newKey(t)
	if err := Install(path, dataDir, m, nodeKey, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("verified file still there after Install: %v", err)
	}
	pre, _ := filepath.Glob(filepath.Join(dataDir, DBName+".pre-restore-*"))
	if len(pre) != 1 {
		t.Fatalf("pre-restore copies: %v", pre)
	}
	prev := openStore(t, pre[0])
	if _, err := prev.User(oldUsers[0]); err != nil {
		t.Errorf("previous database not kept: %v", err)
	}

	got := openStore(t, filepath.Join(dataDir, DBName))
	for _, id := range users {
		if _, err := got.User(id); err != nil {
			t.Fatalf("user %s: %v", id, err)
		}
	}
	if _, err := got.User(oldUsers[0]); err == nil {
		t.Error("the old database's user is in the restored one")
	}
	wrapped, err := got.GetMeta(store.MetaDataKey)
	if err != nil {
		t.Fatal(err)
	}
	k, err := keyring.Unwrap(nodeKey, wrapped, DataKeyLabel)
	if err != nil {
		t.Fatalf("unwrapping with the new node key: %v", err)
	}
	if !k.Equal(dataKey) {
		t.Fatal("restored data key differs from the original")
	}
}

// A backup taken while writers go on holds every write acknowledged before
// it started, and passes Check (Read runs it).
func TestBackupUnderLoad(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := newStore(t)
	g := newIDs(3)

	var mu sync.Mutex
	var acked []string
	var wg sync.WaitGroup
	started := make(chan struct{}, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				id := g.next(epoch)
				if err := st.Do(ctx, meta(), createUser(id, int64(w*1_000_000+i+1))); err != nil {
					if ctx.Err() == nil {
						t.Errorf("writer %d: %v", w, err)
					}
					return
				}
				mu.Lock()
				acked = append(acked, id)
				mu.Unlock()
				if i == 50 {
					started <- struct{}{}
				}
			}
		}()
	}
	for range 8 {
		<-started
	}
	mu.Lock()
	before := append([]string(nil), acked...)
	mu.Unlock()
	backup, _ := writeBackup(t, st, newKey(t))
	mu.Lock()
	during := len(acked) - len(before)
	mu.Unlock()
	cancel()
	wg.Wait()

	dir := t.TempDir()
	_, path, err := ReadWithPassKey(context.Background(), bytes.NewReader(backup), passKey(t), dir)
	if err != nil {
		t.Fatal(err)
	}
	got := openStore(t, path)
	for _, id := range before {
		if _, err := got.User(id); err != nil {
			t.Fatalf("acknowledged user %s missing from the backup: %v", id, err)
		}
	}
	t.Logf("%d writes acknowledged before the backup, %d while it ran", len(before), during)
}

// Write stops when its context is cancelled.
func TestWriteCancelled(t *testing.T) {
	st := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Write(ctx, &bytes.Buffer{}, st, newKey(t), passKey(t), Manifest{}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

// The manifest's data key never reaches a log line.
func TestManifestLogRedactsKey(t *testing.T) {
	m := &Manifest{Format: 1, DataKey: bytes.Repeat([]byte{0xab}, 32), Node: "n1"}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "manifest", m)
	if strings.Contains(buf.String(), "q6ur") || !strings.Contains(buf.String(), `"node":"n1"`) {
		t.Fatalf("log line: %s", buf.String())
	}
	if s := fmt.Sprint(m.LogValue()); strings.Contains(s, "171") {
		t.Fatalf("LogValue prints the key: %s", s)
	}
}
