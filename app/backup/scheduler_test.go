package backup

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/usipipo/usipipo/app/apptest"
)

func newScheduler(t *testing.T, keep int, every time.Duration) (*Scheduler, *apptest.Clock, *metrics.Set, string) {
	t.Helper()
	st := newStore(t)
	addUsers(t, st, newIDs(9), 10)
	clock := apptest.NewClock(epoch)
	set := metrics.NewSet()
	dir := filepath.Join(t.TempDir(), "backups")
	s, err := NewScheduler(SchedulerOptions{Store: st, DataKey: newKey(t), PassKey: passKey(t), Dir: dir,
		Every: every, Keep: keep, Node: "n1", Version: "test", Metrics: set, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return s, clock, set, dir
}

func metric(t *testing.T, set *metrics.Set, name string) string {
	t.Helper()
	var buf bytes.Buffer
	set.WritePrometheus(&buf)
	for line := range strings.Lines(buf.String()) {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no metric %s in\n%s", name, buf.String())
	return ""
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// Backups are named after the injected clock, 0600 in a 0700 dir, and only
// the newest Keep stay.
func TestSchedulerRetention(t *testing.T) {
	s, clock, set, dir := newScheduler(t, 3, time.Hour)
	ctx := context.Background()
	var paths []string
	for range 5 {
		p, err := s.BackupNow(ctx)
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
		clock.Add(time.Hour)
	}
	if filepath.Base(paths[0]) != "usipipo-20260102T030405Z.bak" {
		t.Errorf("first backup named %s", filepath.Base(paths[0]))
	}
	want := []string{"usipipo-20260102T050405Z.bak", "usipipo-20260102T060405Z.bak", "usipipo-20260102T070405Z.bak"}
	if got := dirNames(t, dir); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("kept %v, want %v", got, want)
	}
	fi, _ := os.Stat(dir)
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v", fi.Mode())
	}
	for _, name := range want {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v", name, fi.Mode(), err)
		}
	}
	if got := metric(t, set, "usipipo_backup_last_success_timestamp_seconds"); got != "1767337445" {
		t.Errorf("last success %s", got)
	}
	if got := metric(t, set, "usipipo_backup_failures_total"); got != "0" {
		t.Errorf("failures %s", got)
	}
	if got := metric(t, set, "usipipo_backup_size_bytes"); got == "0" {
		t.Error("size 0")
	}
	// Each kept file restores with the passphrase too.
	f, err := os.Open(paths[4])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, _, err := Read(ctx, f, []byte(testPassphrase), t.TempDir()); err != nil {
		t.Fatal(err)
	}
}

// Two backups in the same second get distinct names, newest kept last.
func TestSchedulerSameSecond(t *testing.T) {
	s, _, _, dir := newScheduler(t, 1, time.Hour)
	for range 2 {
		if _, err := s.BackupNow(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if got := dirNames(t, dir); len(got) != 1 || got[0] != "usipipo-20260102T030405Z-2.bak" {
		t.Fatalf("kept %v", got)
	}
}

// A backup that fails verification is deleted, counted and reported.
func TestSchedulerFailedVerification(t *testing.T) {
	s, clock, set, dir := newScheduler(t, 3, time.Hour)
	if _, err := s.BackupNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Hour)
	s.afterWrite = func(path string) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 1
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, err := s.BackupNow(context.Background())
	if err == nil {
		t.Fatal("a corrupted backup passed verification")
	}
	t.Log(err)
	if got := metric(t, set, "usipipo_backup_failures_total"); got != "1" {
		t.Errorf("failures %s", got)
	}
	if got := metric(t, set, "usipipo_backup_last_success_timestamp_seconds"); got != "1767323045" {
		t.Errorf("last success moved to %s", got)
	}
	if got := dirNames(t, dir); len(got) != 1 || got[0] != "usipipo-20260102T030405Z.bak" {
		t.Fatalf("dir holds %v", got)
	}
}

// Run backs up at once when there is no backup, then every Every; a
// restart with a fresh backup waits; leftovers of a crash are removed.
func TestSchedulerRun(t *testing.T) {
	s, clock, set, dir := newScheduler(t, 10, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	// Wait for a finished backup, not for its .tmp or verification scratch.
	finished := func() bool {
		return slices.ContainsFunc(dirNames(t, dir), func(n string) bool { return strings.HasSuffix(n, ".bak") })
	}
	deadline := time.Now().Add(30 * time.Second)
	for !finished() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := dirNames(t, dir); len(got) != 1 {
		t.Fatalf("after the first run: %v", got)
	}

	// Restart half an hour later, with a crash's leftovers in the dir.
	os.WriteFile(filepath.Join(dir, "usipipo-20260102T033000Z.bak.tmp"), []byte("x"), 0o600)
	os.Mkdir(filepath.Join(dir, ".verify-123"), 0o700)
	clock.Add(30 * time.Minute)
	s2, err := NewScheduler(SchedulerOptions{Store: s.o.Store, DataKey: s.o.DataKey, PassKey: s.o.PassKey, Dir: dir,
		Every: time.Hour, Metrics: set, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if got := dirNames(t, dir); len(got) != 1 {
		t.Fatalf("leftovers not removed: %v", got)
	}
	if d := s2.firstDelay(); d != 30*time.Minute {
		t.Errorf("first delay %v, want 30m", d)
	}
	clock.Add(2 * time.Hour)
	if d := s2.firstDelay(); d != 0 {
		t.Errorf("first delay with an old backup %v, want 0", d)
	}
}

func TestNewSchedulerChecksOptions(t *testing.T) {
	st := newStore(t)
	dir := t.TempDir()
	for name, o := range map[string]SchedulerOptions{
		"no store":    {DataKey: newKey(t), PassKey: passKey(t), Dir: dir},
		"no data key": {Store: st, PassKey: passKey(t), Dir: dir},
		"no pass key": {Store: st, DataKey: newKey(t), Dir: dir},
		"no dir":      {Store: st, DataKey: newKey(t), PassKey: passKey(t)},
	} {
		if _, err := NewScheduler(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
