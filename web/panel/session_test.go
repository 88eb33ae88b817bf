package panel

import (
	"testing"
	"time"

	"github.com/usipipo/usipipo/app/apptest"
)

// A flood of login forms fills the table but evicts login forms, never a
// logged-in admin's session.
func TestSessionFloodKeepsAdmins(t *testing.T) {
	clk := apptest.NewClock(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	s := newSessions(clk.Now, time.Hour, 12*time.Hour)
	_, admin, err := s.create("root", false, "")
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Minute) // the admin's session is now the least recently used
	for range maxSessions * 2 {
		if _, _, err := s.create("", false, ""); err != nil {
			t.Fatal(err)
		}
	}
	if len(s.m) > maxSessions {
		t.Fatalf("%d sessions, cap %d", len(s.m), maxSessions)
	}
	if ss := s.get(admin); ss == nil || ss.admin != "root" {
		t.Fatal("the admin's session was evicted by login forms")
	}
	if s.get("not-a-token") != nil || s.get("") != nil {
		t.Fatal("an unknown token found a session")
	}
}
