package node

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// A node forgets month-old idempotency keys and week-old trial counts when
// it starts (and daily after), as the system, keeping young ones.
func TestNodeHousekeepsAtStart(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	if _, err := Init(context.Background(), data, "passphrase", rand.Reader); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(store.Options{Path: dbPath(data)})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	old, recent := now.Add(-40*24*time.Hour), now.Add(-2*24*time.Hour)
	uid, _ := model.NewID(old, rand.Reader)
	ops := []store.Op{{Meta: store.Meta{At: old, Actor: "test"}, Cmd: store.CreateUser{ID: uid, TelegramID: 1,
		UserKey: model.Sealed("k"), Language: "es", ReferralCode: "c1"}}}
	for i, at := range []time.Time{old, recent} {
		kid, _ := model.NewID(at, rand.Reader)
		ops = append(ops, store.Op{Meta: store.Meta{At: at, Actor: "test"}, Cmd: store.CreateKey{ID: kid, UserID: uid,
			Type: []model.KeyType{model.Outline, model.WireGuard}[i], Node: "n", Grant: store.ByTrial, Secret: model.Sealed("s"),
			Limits: model.Limits{ExpiresAt: at.Add(72 * time.Hour)}, Once: []string{"old", "recent"}[i]}})
	}
	errs, err := st.ApplyBatch(ops)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range errs {
		if e != nil {
			t.Fatal(e)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	r := start(t, testConfig(t, data, "--backup-every", "0"))
	s := r.node.Store
	waitNotify(t, "the old idempotency key to go", func() bool { _, ok, _ := s.OnceRef("old"); return !ok })
	waitNotify(t, "the old trial day to go", func() bool { n, _ := s.TrialsToday(old); return n == 0 })
	if _, ok, err := s.OnceRef("recent"); err != nil || !ok {
		t.Errorf("a 2-day-old idempotency key was forgotten: %v %v", ok, err)
	}
	if n, _ := s.TrialsToday(recent); n != 1 {
		t.Errorf("a 2-day-old trial count is %d, want 1", n)
	}
	es, _, err := s.Audit(store.AuditFilter{}, store.Page{Limit: store.MaxLimit})
	if err != nil || !slices.ContainsFunc(es, func(e model.AuditEntry) bool {
		return e.Action == (store.Housekeep{}).Kind() && e.Actor == string(app.ActorSystem) && e.Error == ""
	}) {
		t.Fatalf("no housekeeping by the system in the audit trail (%v)", err)
	}
}
