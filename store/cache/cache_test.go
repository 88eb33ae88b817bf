package cache

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"
)

// newTestCache returns an enabled cache closed when the test ends.
func newTestCache(t testing.TB, opts Options) *Cache {
	t.Helper()
	if opts.MaxBytes == 0 {
		opts.MaxBytes = 1 << 20
	}
	c, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestNewRejectsNegativeMaxBytes(t *testing.T) {
	if _, err := New(Options{MaxBytes: -1}); !errors.Is(err, ErrNegativeMaxBytes) {
		t.Fatalf("New(-1) error = %v, want ErrNegativeMaxBytes", err)
	}
}

func TestGetSet(t *testing.T) {
	c := newTestCache(t, Options{})
	base := Key{Kind: "key", ID: "k1", Version: 3, Variant: "wg-conf"}
	Set(c, base, "config-v3", 9, Configs)
	c.Wait()

	tests := []struct {
		name string
		key  Key
		want bool
	}{
		{"same key", base, true},
		{"newer version", Key{Kind: "key", ID: "k1", Version: 4, Variant: "wg-conf"}, false},
		{"older version", Key{Kind: "key", ID: "k1", Version: 2, Variant: "wg-conf"}, false},
		{"other variant", Key{Kind: "key", ID: "k1", Version: 3, Variant: "qr-png"}, false},
		{"other id", Key{Kind: "key", ID: "k2", Version: 3, Variant: "wg-conf"}, false},
		{"other kind", Key{Kind: "user", ID: "k1", Version: 3, Variant: "wg-conf"}, false},
		{"shifted boundary", Key{Kind: "keyk", ID: "1", Version: 3, Variant: "wg-conf"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Get[string](c, tt.key)
			if ok != tt.want {
				t.Fatalf("Get(%+v) ok = %v, want %v", tt.key, ok, tt.want)
			}
			if ok && got != "config-v3" {
				t.Fatalf("Get = %q, want config-v3", got)
			}
		})
	}
}

func TestGetWrongTypeIsMiss(t *testing.T) {
	c := newTestCache(t, Options{})
	k := Key{Kind: "key", ID: "k1", Version: 1}
	Set(c, k, []byte("png"), 3, Configs)
	c.Wait()
	if _, ok := Get[string](c, k); ok {
		t.Fatal("Get[string] of a []byte value reported a hit")
	}
	if got, ok := Get[[]byte](c, k); !ok || string(got) != "png" {
		t.Fatalf("Get[[]byte] = %q, %v; want png, true", got, ok)
	}
}

// TestHashCollisionIsMiss plants an entry whose stored Key differs from the
// key hashing to its slot, as a real 64-bit collision would.
func TestHashCollisionIsMiss(t *testing.T) {
	c := newTestCache(t, Options{})
	a := Key{Kind: "key", ID: "a", Version: 1}
	b := Key{Kind: "key", ID: "b", Version: 1}
	c.rc.SetWithTTL(b.hash(), entry{key: a, val: "value-of-a"}, 1, time.Hour)
	c.Wait()
	if v, ok := Get[string](c, b); ok {
		t.Fatalf("Get(b) returned %q stored for a colliding key", v)
	}
}

func TestKeyHashSeparatesFields(t *testing.T) {
	keys := []Key{
		{},
		{Kind: "ab", ID: "c"},
		{Kind: "a", ID: "bc"},
		{Kind: "a", ID: "b", Variant: "c"},
		{Kind: "a", ID: "bc", Version: 1},
		{Kind: "a", ID: "", Variant: "bc"},
		{ID: "a", Variant: "bc"},
	}
	seen := map[uint64]Key{}
	for _, k := range keys {
		h := k.hash()
		if prev, dup := seen[h]; dup {
			t.Fatalf("%+v and %+v hash alike", prev, k)
		}
		seen[h] = k
		if k.hash() != h {
			t.Fatalf("hash of %+v is not stable", k)
		}
	}
}

// TestDisabledBehavesTheSame runs one scenario against an enabled and a
// disabled cache: results must be equal, only the compute count differs.
func TestDisabledBehavesTheSame(t *testing.T) {
	disabled, err := New(Options{})
	if err != nil {
		t.Fatalf("New(disabled): %v", err)
	}
	t.Cleanup(disabled.Close)
	tests := []struct {
		name         string
		c            *Cache
		wantComputes int
		wantHit      bool
	}{
		{"enabled", newTestCache(t, Options{}), 1, true},
		{"disabled", disabled, 3, false},
		{"nil", nil, 3, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := Key{Kind: "user", ID: "u1", Version: 7, Variant: "view"}
			computes := 0
			compute := func() (string, int64, error) {
				computes++
				return "view-v7", 7, nil
			}
			for range 3 {
				got, err := GetOrCompute(context.Background(), tt.c, k, Users, compute)
				if err != nil || got != "view-v7" {
					t.Fatalf("GetOrCompute = %q, %v; want view-v7", got, err)
				}
				tt.c.Wait()
			}
			if computes != tt.wantComputes {
				t.Fatalf("computes = %d, want %d", computes, tt.wantComputes)
			}
			if _, ok := Get[string](tt.c, k); ok != tt.wantHit {
				t.Fatalf("Get ok = %v, want %v", ok, tt.wantHit)
			}
		})
	}
}

func TestCloseIsIdempotentAndDisables(t *testing.T) {
	c, err := New(Options{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	k := Key{Kind: "key", ID: "k1", Version: 1}
	Set(c, k, "v", 1, Configs)
	c.Wait()
	c.Close()
	c.Close()
	c.Wait()
	Set(c, k, "v", 1, Configs)
	if _, ok := Get[string](c, k); ok {
		t.Fatal("Get after Close reported a hit")
	}
	got, err := GetOrCompute(context.Background(), c, k, Configs, func() (string, int64, error) {
		return "computed", 8, nil
	})
	if err != nil || got != "computed" {
		t.Fatalf("GetOrCompute after Close = %q, %v", got, err)
	}
}

func TestCloseStopsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	for range 3 {
		c, err := New(Options{MaxBytes: 1 << 20})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		Set(c, Key{Kind: "key", ID: "k"}, "v", 1, Users)
		c.Wait()
		c.Close()
	}
	// Close waits for ristretto's workers; the deadline only guards against
	// the runtime's own bookkeeping lagging.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutines: %d before, %d after Close\n%s",
				before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		runtime.Gosched()
	}
}
