package wireguard

import (
	"math"
	"testing"
	"time"
)

// Speed changes at the same instant leave the buckets counting: a bucket
// once switched through rate.Inf with no time between two changes held NaN
// tokens and never refused again.
func TestSpeedChangesKeepBucketsCounting(t *testing.T) {
	l := newLive("c")
	now := time.Unix(1_800_000_000, 0)
	for _, bps := range []uint64{1000, 0, 1000, 0, 1000} {
		l.setSpeedAt(now, bps)
	}
	if !l.limited.Load() {
		t.Fatal("limited after setting a speed: false")
	}
	for name, r := range map[string]interface {
		TokensAt(time.Time) float64
		AllowN(time.Time, int) bool
	}{"up": l.up, "down": l.down} {
		if tok := r.TokensAt(now); math.IsNaN(tok) || tok > 1 {
			t.Fatalf("%s: %v tokens right after the change, want about 0", name, tok)
		}
		if r.AllowN(now, 500) {
			t.Fatalf("%s: 500 bytes allowed with an empty bucket", name)
		}
		if !r.AllowN(now.Add(2*time.Second), 1500) {
			t.Fatalf("%s: 1500 bytes refused after 2 s at 1000 B/s", name)
		}
	}
	l.setSpeedAt(now, 0)
	if l.limited.Load() {
		t.Fatal("limited after clearing the speed")
	}
}
