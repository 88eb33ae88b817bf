package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/usipipo/usipipo/store/model"
)

// putRaw writes one value straight into a bucket, as an older node did.
func putRaw(t *testing.T, s *Store, bucket []byte, k string, v []byte) {
	t.Helper()
	err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put([]byte(k), v) })
	if err != nil {
		t.Fatal(err)
	}
}

func onceAt(t *testing.T, s *Store, key string) (ref string, at time.Time, dated, ok bool) {
	t.Helper()
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bOnce).Get([]byte(key))
		if b == nil {
			return nil
		}
		ok = true
		var err error
		ref, at, dated, err = decodeOnce(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return ref, at, dated, ok
}

// Housekeeping forgets idempotency keys past the retention and trial-day
// counters past theirs, dates keys written before entries had a time (they
// go one retention later), keeps young keys, recent days and every erased/
// record, and a forgotten key applies its command again.
func TestHousekeepPrunesOnceKeysAndTrialDays(t *testing.T) {
	s, g := openTest(t), newIDs(11)
	guard := fmt.Sprintf("%064x", 7)
	var users []string
	for i := range 4 {
		u := newUser(g, epoch, int64(200+i))
		if i == 0 {
			u.TrialGuard = guard
		}
		mustDo(t, s, epoch, u)
		users = append(users, u.ID)
	}
	plan := testPlan(g, 5)
	mustDo(t, s, epoch, PutPlan{Plan: plan})
	grant := func(at time.Time, key string) GrantPlan {
		return GrantPlan{SubID: g.next(at), UserID: users[1], PlanID: plan.ID, Months: 1, Source: "admin", Once: key}
	}
	old := grant(epoch, "old")
	mustDo(t, s, epoch, old)
	young := grant(epoch.Add(29*24*time.Hour), "young")
	mustDo(t, s, epoch.Add(29*24*time.Hour), young)
	putRaw(t, s, bOnce, "legacy", []byte("01LEGACYREF"))
	mustDo(t, s, epoch, grant(epoch, "legacy")) // an undated key still stops a repeat
	if ref, ok, err := s.OnceRef("legacy"); err != nil || !ok || ref != "01LEGACYREF" {
		t.Fatalf("OnceRef of an undated key: %q %v %v", ref, ok, err)
	}
	// Trials on four days: day 0, 1, 25 and 31.
	for i, d := range []int{0, 1, 25, 31} {
		at := epoch.Add(time.Duration(d) * 24 * time.Hour)
		k := newKey(g, at, users[i], ByTrial)
		mustDo(t, s, at, k)
	}
	mustDo(t, s, epoch, EraseUser{UserID: users[0], TrialGuard: guard})

	now := epoch.Add(31*24*time.Hour + time.Hour)
	hk := Housekeep{OnceBefore: now.Add(-OnceRetention), TrialDaysBefore: now.Add(-TrialDayRetention), Max: 1000}
	if n, err := s.HousekeepingDue(hk.OnceBefore, hk.TrialDaysBefore, hk.Max); err != nil || n != 4 {
		t.Fatalf("due = %d, %v; want 4 (old key, legacy key, days 0 and 1)", n, err)
	}
	mustDo(t, s, now, hk)

	if _, ok, _ := s.OnceRef("old"); ok {
		t.Error("a key past the retention is still remembered")
	}
	if ref, ok, err := s.OnceRef("young"); err != nil || !ok || ref != young.SubID {
		t.Errorf("young key: %q %v %v", ref, ok, err)
	}
	if ref, at, dated, ok := onceAt(t, s, "legacy"); !ok || !dated || ref != "01LEGACYREF" || !at.Equal(now.Truncate(time.Second)) {
		t.Errorf("legacy key after housekeeping: %q dated=%v at %v ok=%v, want dated at %v", ref, dated, at, ok, now)
	}
	if ref, ok, err := s.OnceRef("legacy"); err != nil || !ok || ref != "01LEGACYREF" {
		t.Errorf("OnceRef of a dated legacy key: %q %v %v", ref, ok, err)
	}
	for d, want := range map[int]uint64{0: 0, 1: 0, 25: 1, 31: 1} {
		if n, _ := s.TrialsToday(epoch.Add(time.Duration(d) * 24 * time.Hour)); n != want {
			t.Errorf("day %d counts %d trials after housekeeping, want %d", d, n, want)
		}
	}
	if used, err := s.guarded(guard); err != nil || len(used) != 1 {
		t.Errorf("erased record after housekeeping: %v %v", used, err)
	}
	if n, err := s.HousekeepingDue(hk.OnceBefore, hk.TrialDaysBefore, hk.Max); err != nil || n != 0 {
		t.Fatalf("due after housekeeping = %d, %v", n, err)
	}

	// The forgotten key no longer stops its command.
	mustDo(t, s, now, grant(now, "old"))
	if subs, _, _ := s.Subscriptions(users[1], Page{Limit: MaxLimit}); len(subs) != 3 {
		t.Errorf("%d subscriptions after reusing a forgotten key, want 3", len(subs))
	}
	// A retention later the dated legacy key goes too.
	later := now.Add(OnceRetention + time.Hour)
	mustDo(t, s, later, Housekeep{OnceBefore: later.Add(-OnceRetention), TrialDaysBefore: later.Add(-TrialDayRetention), Max: 1000})
	if _, _, _, ok := onceAt(t, s, "legacy"); ok {
		t.Error("legacy key still there a retention after it was dated")
	}
}

// guarded reads an erased/ record, for tests.
func (s *Store) guarded(hash string) ([]model.KeyType, error) {
	var out []model.KeyType
	err := s.read(func(v *view) error {
		var err error
		out, err = guardedTrials(v, hash)
		return err
	})
	return out, err
}

// A batch stops at Max entries and the next command goes on where it is
// still due; the same commands leave the same bytes however they are grouped.
func TestHousekeepBatches(t *testing.T) {
	fill := func(s *Store) {
		for i := range 7 {
			putRaw(t, s, bOnce, fmt.Sprintf("k%d", i), onceValue(epoch, "ref"))
		}
		putRaw(t, s, bOnce, "legacy", []byte("ref"))
		for d := range 3 {
			putRaw(t, s, bTrialGuard, string(guardDayKey(epoch.Add(time.Duration(d)*24*time.Hour))), u64(1))
		}
	}
	a, b := openTest(t), openTest(t)
	fill(a)
	fill(b)
	now := epoch.Add(60 * 24 * time.Hour)
	hk := Housekeep{OnceBefore: now.Add(-OnceRetention), TrialDaysBefore: now.Add(-TrialDayRetention), Max: 3}
	var ops []Op
	for due := 11; due > 0; due -= hk.Max {
		n, err := a.HousekeepingDue(hk.OnceBefore, hk.TrialDaysBefore, 1000)
		if err != nil || n != due {
			t.Fatalf("due = %d, %v; want %d", n, err, due)
		}
		mustDo(t, a, now, hk)
		ops = append(ops, Op{Meta: meta(now), Cmd: hk})
	}
	if n, _ := a.HousekeepingDue(hk.OnceBefore, hk.TrialDaysBefore, 1000); n != 0 {
		t.Fatalf("%d still due after the batches", n)
	}
	if errs, err := b.ApplyBatch(ops); err != nil || errors.Join(errs...) != nil {
		t.Fatalf("one group: %v %v", err, errs)
	}
	if err := equalDumps(dump(t, a), dump(t, b)); err != nil {
		t.Fatal(err)
	}
}

// Cutoffs that would forget a young key, or today's trial count, and
// malformed commands are refused.
func TestHousekeepRefusesUnsafeCutoffs(t *testing.T) {
	s := openTest(t)
	now := epoch
	for name, hk := range map[string]Housekeep{
		"once too young": {OnceBefore: now.Add(-time.Hour), TrialDaysBefore: now.Add(-48 * time.Hour), Max: 10},
		"today's trials": {OnceBefore: now.Add(-OnceRetention), TrialDaysBefore: now.Add(24 * time.Hour), Max: 10},
		"no cutoff":      {TrialDaysBefore: now.Add(-48 * time.Hour), Max: 10},
		"no batch":       {OnceBefore: now.Add(-OnceRetention), TrialDaysBefore: now.Add(-48 * time.Hour)},
		"huge batch":     {OnceBefore: now.Add(-OnceRetention), TrialDaysBefore: now.Add(-48 * time.Hour), Max: 1 << 20},
	} {
		if err := s.Do(context.Background(), meta(now), hk); !errors.Is(err, model.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	// The day itself as the cutoff keeps today's count.
	putRaw(t, s, bTrialGuard, string(guardDayKey(now)), u64(3))
	mustDo(t, s, now, Housekeep{OnceBefore: now.Add(-OnceRetention), TrialDaysBefore: now, Max: 10})
	if n, _ := s.TrialsToday(now); n != 3 {
		t.Errorf("today's count %d after housekeeping, want 3", n)
	}
}

// The store check covers the once bucket and the trial guard.
func TestCheckCoversOnceAndTrialGuard(t *testing.T) {
	s := openTest(t)
	putRaw(t, s, bOnce, "legacy", []byte("ref"))
	putRaw(t, s, bOnce, "dated", onceValue(epoch, "ref"))
	putRaw(t, s, bTrialGuard, string(guardDayKey(epoch)), u64(1))
	putRaw(t, s, bTrialGuard, "erased/"+fmt.Sprintf("%064x", 1), []byte(`["outline","wireguard"]`))
	if err := s.Check(); err != nil {
		t.Fatalf("valid records: %v", err)
	}
	for name, bad := range map[string]struct {
		bucket []byte
		k      string
		v      []byte
	}{
		"short dated once":  {bOnce, "bad", []byte{onceDated, 1, 2}},
		"overlong once key": {bOnce, string(make([]byte, maxOnceKey+1)), []byte("ref")},
		"bad day":           {bTrialGuard, "day/2026-13-01", u64(1)},
		"short count":       {bTrialGuard, string(guardDayKey(epoch.Add(24 * time.Hour))), []byte{1}},
		"bad hash":          {bTrialGuard, "erased/xyz", []byte(`["outline"]`)},
		"unsorted trials":   {bTrialGuard, "erased/" + fmt.Sprintf("%064x", 2), []byte(`["wireguard","outline"]`)},
		"unknown type":      {bTrialGuard, "erased/" + fmt.Sprintf("%064x", 3), []byte(`["pptp"]`)},
		"stray record":      {bTrialGuard, "other", []byte("x")},
	} {
		putRaw(t, s, bad.bucket, bad.k, bad.v)
		if err := s.Check(); err == nil {
			t.Errorf("%s: check passed", name)
		}
		err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bad.bucket).Delete([]byte(bad.k)) })
		if err != nil {
			t.Fatal(err)
		}
	}
}

// BenchmarkHousekeepingScan measures the daily read of a once bucket of
// 100,000 young keys (nothing due), against a bare bbolt walk of the same
// bucket as the same-run baseline.
func BenchmarkHousekeepingScan(b *testing.B) {
	s := openTest(b)
	err := s.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bOnce)
		for i := range 100_000 {
			if err := bk.Put(fmt.Appendf(nil, "tg-update-%d", i), onceValue(epoch, "01KEYREFERENCE0000000000AB")); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("baseline_walk", func(b *testing.B) {
		for b.Loop() {
			n := 0
			_ = s.db.View(func(tx *bolt.Tx) error {
				return tx.Bucket(bOnce).ForEach(func(k, v []byte) error { n++; return nil })
			})
		}
	})
	b.Run("due", func(b *testing.B) {
		for b.Loop() {
			if n, err := s.HousekeepingDue(epoch.Add(-OnceRetention), epoch.Add(-TrialDayRetention), 10_000); err != nil || n != 0 {
				b.Fatal(n, err)
			}
		}
	})
}
