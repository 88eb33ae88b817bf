package store

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/usipipo/usipipo/store/model"
)

func TestPlanQuotaAndLimits(t *testing.T) {
	s := openTest(t)
	g := newIDs(1)
	u := newUser(g, epoch, 42)
	mustDo(t, s, epoch, u)
	plan := testPlan(g, 2)
	mustDo(t, s, epoch, PutPlan{Plan: plan})

	// No plan yet: a plan key is refused.
	err := s.Do(context.Background(), meta(epoch), newKey(g, epoch, u.ID, ByPlan))
	if !errors.Is(err, model.ErrQuota) {
		t.Fatalf("key without plan: %v, want ErrQuota", err)
	}
	mustDo(t, s, epoch, GrantPlan{SubID: g.next(epoch), UserID: u.ID, PlanID: plan.ID, Months: 1, Source: "admin"})
	k1 := newKey(g, epoch, u.ID, ByPlan)
	mustDo(t, s, epoch, k1)
	mustDo(t, s, epoch, newKey(g, epoch, u.ID, ByPlan))
	if err := s.Do(context.Background(), meta(epoch), newKey(g, epoch, u.ID, ByPlan)); !errors.Is(err, model.ErrQuota) {
		t.Fatalf("third key on a 2-key plan: %v, want ErrQuota", err)
	}
	k, err := s.Key(k1.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := epoch.Add(30 * 24 * time.Hour); !k.Limits.ExpiresAt.Equal(want) || k.Limits.DataCap != plan.DataCapBytes {
		t.Errorf("limits %+v, want expiry %v and cap %d from the plan", k.Limits, want, plan.DataCapBytes)
	}
	// Revoking frees a slot.
	mustDo(t, s, epoch, SetKeyStatus{KeyID: k1.ID, Status: model.KeyRevoked})
	mustDo(t, s, epoch, newKey(g, epoch, u.ID, ByPlan))
	// Renewal extends from the current expiry.
	mustDo(t, s, epoch.Add(time.Hour), GrantPlan{SubID: g.next(epoch), UserID: u.ID, PlanID: plan.ID, Months: 1, Source: "p"})
	active, _, err := s.Keys(KeyFilter{UserID: u.ID, Status: model.KeyActive}, Page{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range active {
		if want := epoch.Add(60 * 24 * time.Hour); !k.Limits.ExpiresAt.Equal(want) {
			t.Errorf("renewed key %s expires %v, want %v", k.ID, k.Limits.ExpiresAt, want)
		}
	}
}

func TestRejectedCommandAloneInItsGroup(t *testing.T) {
	s := openTest(t)
	g := newIDs(2)
	a, b := newUser(g, epoch, 1), newUser(g, epoch, 2)
	dup := newUser(g, epoch, 1) // same Telegram id as a
	errs, err := s.ApplyBatch([]Op{{meta(epoch), a}, {meta(epoch), dup}, {meta(epoch), b}})
	if err != nil {
		t.Fatal(err)
	}
	if errs[0] != nil || errs[2] != nil || !errors.Is(errs[1], model.ErrExists) {
		t.Fatalf("errs = %v, want only the duplicate refused", errs)
	}
	for _, id := range []string{a.ID, b.ID} {
		if _, err := s.User(id); err != nil {
			t.Errorf("user %s: %v", id, err)
		}
	}
	if _, err := s.User(dup.ID); !errors.Is(err, model.ErrNotFound) {
		t.Errorf("refused user was stored: %v", err)
	}
	entries, _, err := s.Audit(AuditFilter{UserID: dup.ID}, Page{})
	if err != nil || len(entries) != 1 || entries[0].Error == "" {
		t.Errorf("refusal not audited: %v %+v", err, entries)
	}
}

func TestConcurrentQuotaAndTrialRaces(t *testing.T) {
	s := openTest(t)
	g := newIDs(3)
	u := newUser(g, epoch, 7)
	mustDo(t, s, epoch, u)
	plan := testPlan(g, 3)
	mustDo(t, s, epoch, PutPlan{Plan: plan})
	mustDo(t, s, epoch, GrantPlan{SubID: g.next(epoch), UserID: u.ID, PlanID: plan.ID, Months: 1, Source: "t"})

	const n = 64
	cmds := make([]CreateKey, 2*n)
	for i := range n {
		cmds[i] = newKey(g, epoch, u.ID, ByPlan)
		cmds[n+i] = newKey(g, epoch, u.ID, ByTrial)
	}
	results := make([]error, len(cmds))
	var wg sync.WaitGroup
	for i := range cmds {
		wg.Go(func() { results[i] = s.Do(context.Background(), meta(epoch), cmds[i]) })
	}
	wg.Wait()
	plans, trials := 0, 0
	for i, err := range results {
		switch {
		case err == nil && i < n:
			plans++
		case err == nil:
			trials++
		case !errors.Is(err, model.ErrQuota) && !errors.Is(err, model.ErrTrialUsed):
			t.Errorf("unexpected error: %v", err)
		}
	}
	if plans != 3 || trials != 1 {
		t.Fatalf("%d plan keys and %d trials passed, want 3 and 1", plans, trials)
	}
}

func TestUsageBatchCountsPerNodeAndSuspendsAtCap(t *testing.T) {
	s := openTest(t)
	g := newIDs(4)
	u := newUser(g, epoch, 9)
	mustDo(t, s, epoch, u)
	k := newKey(g, epoch, u.ID, ByAdmin)
	k.Limits.DataCap = 1000
	mustDo(t, s, epoch, k)
	other := newKey(g, epoch, u.ID, ByAdmin)
	mustDo(t, s, epoch, other)

	at := epoch.Add(10 * time.Second)
	batch := UsageBatch{Node: "n1", Start: epoch, End: at, Deltas: []UsageDelta{{ID: k.ID, Rx: 300, Tx: 100}, {ID: other.ID, Rx: 5}}}
	mustDo(t, s, at, batch)
	if err := s.Do(context.Background(), meta(at), batch); !errors.Is(err, model.ErrExists) {
		t.Fatalf("same interval twice: %v, want ErrExists", err)
	}
	mustDo(t, s, at, UsageBatch{Node: "n2", Start: epoch, End: at, Deltas: []UsageDelta{{ID: k.ID, Rx: 100}}})
	got, _ := s.Key(k.ID)
	if got.Usage["n1"].Rx != 300 || got.Usage["n1"].Tx != 100 || got.Usage["n2"].Rx != 100 || got.Status != model.KeyActive {
		t.Fatalf("after 500 bytes: %+v %s", got.Usage, got.Status)
	}
	at2 := at.Add(10 * time.Second)
	mustDo(t, s, at2, UsageBatch{Node: "n1", Start: at, End: at2, Deltas: []UsageDelta{{ID: k.ID, Tx: 500}}})
	got, _ = s.Key(k.ID)
	if got.Status != model.KeySuspended || got.Reason != ReasonDataCap {
		t.Fatalf("at cap: status %s (%s), want suspended for the cap", got.Status, got.Reason)
	}
	o, _ := s.Key(other.ID)
	if o.Usage.Total() != 5 || o.Status != model.KeyActive {
		t.Errorf("other key moved: %+v %s", o.Usage, o.Status)
	}
}

func TestReferralVestsOnFirstPaymentOnly(t *testing.T) {
	s := openTest(t)
	g := newIDs(5)
	ref := newUser(g, epoch, 100)
	mustDo(t, s, epoch, ref)
	u := newUser(g, epoch, 101)
	u.ReferredBy, u.ReferralCredits = ref.ID, 50
	mustDo(t, s, epoch, u)
	plan := testPlan(g, 1)
	mustDo(t, s, epoch, PutPlan{Plan: plan})
	if bal, _ := s.Balance(ref.ID); bal != 0 {
		t.Fatalf("credits before any payment: %d", bal)
	}
	for i, charge := range []string{"ch1", "ch2"} {
		p := model.Payment{ID: g.next(epoch), UserID: u.ID, Provider: "stars", Amount: 100, Currency: "XTR",
			Product: model.Product{Kind: "plan", RefID: plan.ID, Months: 1}}
		mustDo(t, s, epoch, CreatePayment{Payment: p})
		settle := SettlePayment{PaymentID: p.ID, ChargeID: charge, Amount: 100, Currency: "XTR", SubID: g.next(epoch), VestID: g.next(epoch)}
		mustDo(t, s, epoch, settle)
		if err := s.Do(context.Background(), meta(epoch), settle); !errors.Is(err, model.ErrExists) {
			t.Fatalf("payment %d settled twice: %v", i, err)
		}
	}
	if bal, _ := s.Balance(ref.ID); bal != 50 {
		t.Fatalf("referrer balance %d, want 50 (vested once)", bal)
	}
	sub, _, err := s.CurrentPlan(u.ID, epoch)
	if err != nil || !sub.ExpiresAt.Equal(epoch.Add(60*24*time.Hour)) {
		t.Fatalf("two paid months: %v %+v", err, sub)
	}
}

func TestEraseUserForgetsPersonalData(t *testing.T) {
	s := openTest(t)
	g := newIDs(6)
	u := newUser(g, epoch, 555)
	u.Personal = model.Sealed("sealed-names")
	mustDo(t, s, epoch, u)
	k := newKey(g, epoch, u.ID, ByAdmin)
	mustDo(t, s, epoch, k)
	mustDo(t, s, epoch, EraseUser{UserID: u.ID})
	if _, err := s.UserKey(u.ID); !errors.Is(err, model.ErrNotFound) {
		t.Errorf("user key survived erasure: %v", err)
	}
	if _, err := s.UserByTelegram(555); !errors.Is(err, model.ErrNotFound) {
		t.Errorf("telegram id still linked: %v", err)
	}
	got, _ := s.User(u.ID)
	if got.Personal != nil || !got.Erased {
		t.Errorf("erased user %+v", got)
	}
	if kk, _ := s.Key(k.ID); kk.Status != model.KeyRevoked {
		t.Errorf("key of erased user is %s", kk.Status)
	}
	entries, _, _ := s.Audit(AuditFilter{}, Page{Limit: 100})
	for _, e := range entries {
		if bytes.Contains(e.Command, []byte("sealed-user-key")) {
			t.Errorf("audit entry %d holds the user key: %s", e.Seq, e.Command)
		}
	}
}

func TestCloseAnswersQueuedCommands(t *testing.T) {
	s, err := Open(Options{Path: filepath.Join(t.TempDir(), "db")})
	if err != nil {
		t.Fatal(err)
	}
	g := newIDs(7)
	var wg sync.WaitGroup
	errs := make([]error, 200)
	cmds := make([]CreateUser, len(errs))
	for i := range cmds {
		cmds[i] = newUser(g, epoch, int64(1000+i))
	}
	for i := range errs {
		wg.Go(func() { errs[i] = s.Do(context.Background(), meta(epoch), cmds[i]) })
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Do(context.Background(), meta(epoch), newUser(g, epoch, 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Do after Close: %v", err)
	}
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestPruneAuditKeepsRecentEntriesAndIndexes(t *testing.T) {
	s := openTest(t)
	g := newIDs(12)
	var recent CreateUser
	for i := range 30 {
		at := epoch.Add(time.Duration(i) * 24 * time.Hour)
		u := newUser(g, at, int64(i+1))
		mustDo(t, s, at, u)
		if i == 29 {
			recent = u
		}
	}
	if oldest, ok, err := s.OldestAudit(); err != nil || !ok || !oldest.Equal(epoch) {
		t.Fatalf("oldest audit entry %v %v %v", oldest, ok, err)
	}
	cut := epoch.Add(10 * 24 * time.Hour) // the first 10 days go
	mustDo(t, s, epoch.Add(40*24*time.Hour), PruneAudit{Before: cut, Max: 4})
	entries, _, _ := s.Audit(AuditFilter{}, Page{Limit: MaxLimit})
	if len(entries) != 30-4+1 {
		t.Fatalf("%d entries after pruning a batch of 4, want 27", len(entries))
	}
	mustDo(t, s, epoch.Add(40*24*time.Hour), PruneAudit{Before: cut, Max: 100})
	entries, _, _ = s.Audit(AuditFilter{}, Page{Limit: MaxLimit})
	for _, e := range entries {
		if e.At.Before(cut) {
			t.Fatalf("entry %d of %v survived", e.Seq, e.At)
		}
	}
	if len(entries) != 20+2 {
		t.Fatalf("%d entries, want the 20 recent ones and the 2 prunes", len(entries))
	}
	if byUser, _, _ := s.Audit(AuditFilter{UserID: recent.ID}, Page{}); len(byUser) != 1 {
		t.Fatalf("recent user's audit: %d entries", len(byUser))
	}
	if err := s.Do(context.Background(), meta(epoch), PruneAudit{Before: cut}); !errors.Is(err, model.ErrInvalid) {
		t.Fatalf("prune without a batch size: %v", err)
	}
	// openTest's cleanup rebuilds the audit index from the records and compares.
}

// TestMetricsAreSafeForHistogramQuantile checks that the store's histograms
// are written with Prometheus le buckets (DESIGN: histogram_quantile works),
// not VictoriaMetrics' vmrange ones.
func TestMetricsAreSafeForHistogramQuantile(t *testing.T) {
	set := metrics.NewSet()
	s, err := Open(Options{Path: filepath.Join(t.TempDir(), "usipipo.db"), Metrics: set})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustDo(t, s, epoch, newUser(newIDs(9), epoch, 42))
	var b bytes.Buffer
	set.WritePrometheus(&b)
	text := b.String()
	if strings.Contains(text, "vmrange") {
		t.Errorf("vmrange buckets, which histogram_quantile cannot use:\n%s", text)
	}
	for _, name := range []string{"usipipo_store_commit_duration_seconds", "usipipo_store_batch_size"} {
		if !strings.Contains(text, name+`_bucket{le="+Inf"} 1`) {
			t.Errorf("%s: no le buckets counting the commit:\n%s", name, text)
		}
	}
}
