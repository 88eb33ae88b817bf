package app

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/cache"
	"github.com/usipipo/usipipo/store/keyring"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type testNode struct {
	svc   *Service
	st    *store.Store
	clock *clock
}

func newTestNode(t testing.TB) *testNode {
	t.Helper()
	st, err := store.Open(store.Options{Path: filepath.Join(t.TempDir(), "usipipo.db")})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(cache.Options{MaxBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	dk, err := keyring.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	svc, err := New(Options{Store: st, DataKey: dk, Cache: c, Node: "n1", Now: clk.Now,
		Ends: Endpoints{PublicHost: "vpn.example.net", WGPort: 51820, WGPublicKey: "c2VydmVy", SSPort: 8388, MTProtoPort: 443}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Check(); err != nil {
			t.Errorf("store check: %v", err)
		}
		st.Close()
		c.Close()
	})
	return &testNode{svc: svc, st: st, clock: clk}
}

func ctx() context.Context { return context.Background() }
