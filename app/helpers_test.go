package app

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/usipipo/usipipo/internal/testclock"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/cache"
	"github.com/usipipo/usipipo/store/keyring"
)

type testNode struct {
	svc   *Service
	st    *store.Store
	clock *testclock.Clock
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
	clk := testclock.New(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC))
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
