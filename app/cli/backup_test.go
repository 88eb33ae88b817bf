package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/app/admin"
)

const testPass = "correct horse battery staple"

// writeLoad adds users through the admin socket until stop is closed and
// returns the ids acknowledged so far on each call of acked.
func writeLoad(t *testing.T, data string, stop <-chan struct{}) (acked func() []string, wait func()) {
	var mu sync.Mutex
	var ids []string
	var wg sync.WaitGroup
	cl := admin.NewClient(filepath.Join(data, "admin.sock"))
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var u app.UserView
				if err := cl.Call(context.Background(), "user.add", admin.UserAdd{TelegramID: int64(1_000_000*(w+1) + i)}, &u); err != nil {
					return
				}
				mu.Lock()
				ids = append(ids, u.ID)
				mu.Unlock()
			}
		})
	}
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), ids...)
	}, wg.Wait
}

// A hot backup of a node under write load restores on a fresh data dir, with
// a new node key and only the passphrase, and loses no write acknowledged
// before the backup began.
func TestBackupUnderLoadRestoresOnFreshMachine(t *testing.T) {
	data, stopNode := startNode(t)
	stop := make(chan struct{})
	acked, wait := writeLoad(t, data, stop)
	// Wait for acknowledged writes rather than a fixed time: on a loaded
	// machine the first ones can take a while.
	deadline := time.Now().Add(20 * time.Second)
	for len(acked()) < 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	before := acked()
	out := filepath.Join(t.TempDir(), "node.bak")
	env := map[string]string{"USIPIPO_DATA": data, "USIPIPO_BACKUP_PASSPHRASE": testPass}
	code, stdout, errs := runCLI(t, env, "backup", "--out", out)
	close(stop)
	wait()
	stopNode()
	if code != 0 || !strings.Contains(stdout, "backup written") {
		t.Fatalf("backup: %d %q %q", code, stdout, errs)
	}
	if len(before) == 0 {
		t.Fatal("no write acknowledged before the backup")
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o600 {
		t.Errorf("backup file mode %v", fi.Mode().Perm())
	}

	fresh := filepath.Join(t.TempDir(), "fresh")
	code, _, errs = runCLI(t, map[string]string{"USIPIPO_BACKUP_PASSPHRASE": "wrong"}, "restore", "--in", out, "--data", fresh)
	if code != 1 || !strings.Contains(errs, "passphrase") {
		t.Fatalf("wrong passphrase: %d %q", code, errs)
	}
	if _, err := os.Stat(filepath.Join(fresh, "usipipo.db")); err == nil {
		t.Fatal("a refused restore left a database behind")
	}
	code, stdout, errs = runCLI(t, map[string]string{"USIPIPO_BACKUP_PASSPHRASE": testPass}, "restore", "--in", out, "--data", fresh)
	if code != 0 || !strings.Contains(stdout, "restored") {
		t.Fatalf("restore: %d %q %q", code, stdout, errs)
	}
	oldKey, _ := os.ReadFile(filepath.Join(data, "node.key"))
	newKey, _ := os.ReadFile(filepath.Join(fresh, "node.key"))
	if string(oldKey) == string(newKey) {
		t.Fatal("the fresh data dir reused the old node key")
	}
	restored := runNode(t, fresh)
	defer restored.stop()
	cl := admin.NewClient(filepath.Join(fresh, "admin.sock"))
	for _, id := range before {
		if err := cl.Call(context.Background(), "user.show", admin.Target{ID: id}, nil); err != nil {
			t.Fatalf("user %s acknowledged before the backup is missing: %v", id, err)
		}
	}
	if err := cl.Call(context.Background(), "node.check", nil, nil); err != nil {
		t.Fatal(err)
	}
}

// Restoring into a running node swaps the database under it: the node
// verifies the backup, stops, installs it and starts again.
func TestRestoreIntoRunningNode(t *testing.T) {
	data, stopNode := startNode(t)
	defer stopNode()
	env := map[string]string{"USIPIPO_DATA": data, "USIPIPO_BACKUP_PASSPHRASE": testPass}
	if code, _, errs := runCLI(t, env, "user", "add", "--telegram-id", "1"); code != 0 {
		t.Fatal(errs)
	}
	out := filepath.Join(t.TempDir(), "b.bak")
	if code, _, errs := runCLI(t, env, "backup", "--out", out); code != 0 {
		t.Fatal(errs)
	}
	if code, _, errs := runCLI(t, env, "user", "add", "--telegram-id", "2"); code != 0 {
		t.Fatal(errs)
	}
	garbage := filepath.Join(t.TempDir(), "g.bak")
	os.WriteFile(garbage, []byte("this is not a backup at all, not even close"), 0o600)
	if code, _, errs := runCLI(t, env, "restore", "--in", garbage); code != 1 || !strings.Contains(errs, "not a usipipo backup") {
		t.Fatalf("garbage restore: %d %q", code, errs)
	}
	if code, _, errs := runCLI(t, env, "restore", "--in", out); code != 0 {
		t.Fatalf("restore: %q", errs)
	}
	// The node restarts on the restored file: user 1 is there, user 2 (added
	// after the backup) is not.
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, _, errs := runCLI(t, env, "user", "show", "1")
		if code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node did not come back after the restore: %q", errs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, _, errs := runCLI(t, env, "user", "show", "2"); code != 1 || !strings.Contains(errs, "not found") {
		t.Fatalf("user added after the backup survived the restore: %d %q", code, errs)
	}
	matches, _ := filepath.Glob(filepath.Join(data, "usipipo.db.pre-restore-*"))
	if len(matches) != 1 {
		t.Fatalf("previous database not kept aside: %v", matches)
	}
}
