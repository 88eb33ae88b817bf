package panel

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app/apptest"
	"github.com/usipipo/usipipo/store"
)

func storedSessions(t *testing.T, st *store.Store) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	if err := st.ScanTelemetry(store.PanelSessions, "", func(k, v []byte) bool { out[string(k)] = true; return true }); err != nil {
		t.Fatal(err)
	}
	return out
}

// Stored sessions expire like live ones: load skips and deletes expired
// records, create sweeps them out periodically, and login forms are never
// stored.
func TestStoredSessionsExpireAndArePruned(t *testing.T) {
	st, err := store.Open(store.Options{Path: filepath.Join(t.TempDir(), "usipipo.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clk := apptest.NewClock(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	table := func() *sessions {
		s := newSessions(clk.Now, 30*time.Minute, 12*time.Hour)
		s.st = st
		if err := s.load(); err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := table()
	old, oldTok, err := s.create("root", false, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.create("", false, ""); err != nil {
		t.Fatal(err)
	}
	if got := storedSessions(t, st); len(got) != 1 || !got[recordKey(old.key)] {
		t.Fatalf("stored %v, want only the admin's session", got)
	}
	clk.Add(20 * time.Minute)
	fresh, freshTok, err := s.create("root", true, "stamp-1")
	if err != nil {
		t.Fatal(err)
	}
	if s.get(freshTok) == nil {
		t.Fatal("fresh session missing")
	}
	clk.Add(15 * time.Minute) // old: 35 minutes idle; fresh: 15
	// A restart now: the idle session is not restored and its record goes.
	s2 := table()
	if s2.get(oldTok) != nil {
		t.Fatal("an idle session was restored")
	}
	got := s2.get(freshTok)
	if got == nil || got.admin != "root" || !got.mustChange || got.csrf != fresh.csrf || got.stamp != "stamp-1" {
		t.Fatalf("restored session %+v, want root with mustChange, its stamp and the same CSRF token", got)
	}
	if st := storedSessions(t, st); len(st) != 1 || !st[recordKey(fresh.key)] {
		t.Fatalf("stored after load %v", st)
	}
	// Left alone past its idle limit, the session is swept by the next
	// login once pruneEvery has passed.
	clk.Add(time.Hour)
	if _, _, err := s2.create("", false, ""); err != nil {
		t.Fatal(err)
	}
	if st := storedSessions(t, st); len(st) != 0 {
		t.Fatalf("expired sessions still stored: %v", st)
	}
	// Every session ends after its lifetime even when used all along.
	_, tok, err := s2.create("root", false, "")
	if err != nil {
		t.Fatal(err)
	}
	for range 12 * 60 / 20 {
		clk.Add(20 * time.Minute)
		if s2.get(tok) == nil {
			break
		}
	}
	if s2.get(tok) != nil || len(storedSessions(t, st)) != 0 {
		t.Fatal("a session outlived its lifetime")
	}
}
