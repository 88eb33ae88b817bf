package app

import (
	"testing"
	"time"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// Housekeeping through the service forgets a month-old idempotency key and
// a week-old trial count, keeps the young ones, is audited as the system,
// and on a quiet day writes nothing at all.
func TestHousekeepForgetsOldOnceKeysAndTrialDays(t *testing.T) {
	n := newTestNode(t)
	u, err := n.svc.RegisterUser(ctx(), ActorCLI, NewUser{TelegramID: 9})
	if err != nil {
		t.Fatal(err)
	}
	day0 := n.clock.Now()
	first, err := n.svc.CreateKey(ctx(), ActorCLI, KeyRequest{UserID: u.ID, Type: model.Outline, Trial: true, Once: "tg-update-1"})
	if err != nil {
		t.Fatal(err)
	}
	n.clock.Add(28 * 24 * time.Hour)
	day28 := n.clock.Now()
	second, err := n.svc.CreateKey(ctx(), ActorCLI, KeyRequest{UserID: u.ID, Type: model.WireGuard, Trial: true, Once: "tg-update-2"})
	if err != nil {
		t.Fatal(err)
	}
	n.clock.Add(3 * 24 * time.Hour) // 31 days after the first, 3 after the second
	pruned, err := n.svc.Housekeep(ctx())
	if err != nil || pruned != 2 {
		t.Fatalf("Housekeep = %d, %v; want 2 (the first key's once entry and day 0's count)", pruned, err)
	}
	if _, ok, _ := n.st.OnceRef("tg-update-1"); ok {
		t.Error("a 31-day-old idempotency key is still remembered")
	}
	if ref, ok, err := n.st.OnceRef("tg-update-2"); err != nil || !ok || ref != second.ID {
		t.Errorf("3-day-old key: %q %v %v, want %s", ref, ok, err, second.ID)
	}
	if c, _ := n.st.TrialsToday(day0); c != 0 {
		t.Errorf("day 0 still counts %d trials", c)
	}
	if c, _ := n.st.TrialsToday(day28); c != 1 {
		t.Errorf("day 28 counts %d trials, want 1", c)
	}
	if _, err := n.st.Key(first.ID); err != nil {
		t.Errorf("housekeeping touched the key itself: %v", err)
	}
	entries := func() []model.AuditEntry {
		es, _, err := n.st.Audit(store.AuditFilter{}, store.Page{Limit: store.MaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		return es
	}
	before := entries()
	if before[0].Action != (store.Housekeep{}).Kind() || before[0].Actor != string(ActorSystem) || before[0].Error != "" {
		t.Fatalf("newest audit entry %+v, want the system's housekeeping", before[0])
	}
	if pruned, err := n.svc.Housekeep(ctx()); err != nil || pruned != 0 {
		t.Fatalf("second Housekeep = %d, %v", pruned, err)
	}
	if after := entries(); len(after) != len(before) {
		t.Errorf("a quiet housekeeping wrote %d audit entries", len(after)-len(before))
	}
}
