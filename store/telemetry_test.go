package store

import (
	"testing"
	"time"
)

func TestUsageCompactionFoldsOldHoursIntoDays(t *testing.T) {
	s := openTest(t)
	day := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	for h := range 30 { // 30 hours: a whole day and 6 hours of the next
		if err := s.RecordUsage(day.Add(time.Duration(h)*time.Hour+time.Minute), []UsageSample{{ID: "k1", Rx: 10, Tx: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	recent := time.Date(2026, 11, 20, 5, 0, 0, 0, time.UTC)
	s.RecordUsage(recent, []UsageSample{{ID: "k1", Rx: 7}})
	n, err := s.CompactUsage(time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC))
	if err != nil || n != 30 {
		t.Fatalf("folded %d, %v; want the 30 old hours", n, err)
	}
	pts, err := s.UsageSeries("k1")
	if err != nil {
		t.Fatal(err)
	}
	want := []UsagePoint{{At: day, Rx: 240, Tx: 24}, {At: day.Add(24 * time.Hour), Rx: 60, Tx: 6}, {At: recent.Truncate(time.Hour), Rx: 7}}
	if len(pts) != len(want) {
		t.Fatalf("series %+v", pts)
	}
	for i := range want {
		if !pts[i].At.Equal(want[i].At) || pts[i].Rx != want[i].Rx || pts[i].Tx != want[i].Tx {
			t.Fatalf("point %d: %+v, want %+v", i, pts[i], want[i])
		}
	}
	if n, _ := s.CompactUsage(time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)); n != 0 {
		t.Fatal("compaction is not idempotent")
	}
}

func TestTelemetryValues(t *testing.T) {
	s := openTest(t)
	if err := s.PutTelemetry(Receipts, map[string][]byte{"expiry:u1:3d": {1}}); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.GetTelemetry(Receipts, "expiry:u1:3d"); len(v) != 1 {
		t.Fatal("receipt lost")
	}
	s.PutTelemetry(Receipts, map[string][]byte{"expiry:u1:3d": nil})
	if v, _ := s.GetTelemetry(Receipts, "expiry:u1:3d"); v != nil {
		t.Fatal("delete ignored")
	}
	if err := s.PutTelemetry("nope", nil); err == nil {
		t.Fatal("unknown kind accepted")
	}
}

func TestNodeUsageSumsEveryCredentialAcrossCompaction(t *testing.T) {
	s := openTest(t)
	day := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	s.RecordUsage(day.Add(time.Hour), []UsageSample{{ID: "k1", Rx: 10, Tx: 1}, {ID: "k2", Rx: 5, Tx: 2}})
	s.RecordUsage(day.Add(30*time.Hour), []UsageSample{{ID: "k1", Rx: 1, Tx: 1}})
	s.RecordUsage(day.Add(31*time.Hour), nil)
	if _, err := s.CompactUsage(day.Add(HourlyRetention + 24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	pts, err := s.NodeUsageSince(day)
	if err != nil || len(pts) != 2 || pts[0].Rx != 15 || pts[0].Tx != 3 || !pts[0].At.Equal(day) || pts[1].Rx != 1 {
		t.Fatalf("node series %+v %v", pts, err)
	}
	if later, _ := s.NodeUsageSince(day.Add(24 * time.Hour)); len(later) != 1 {
		t.Fatalf("series from the second day %+v", later)
	}
}
