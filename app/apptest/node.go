package apptest

import (
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/cache"
	"github.com/usipipo/usipipo/store/keyring"
)

// Start is where a Node's Clock starts: a fixed instant, so that tests
// that print or compare times are reproducible. Tests that need the real
// time (an HTTP client's cookie jar expires cookies by it) Set the clock.
func Start() time.Time { return time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC) }

// Endpoints are a Node's public endpoints. The WireGuard public key is a
// valid 32-byte key in base64, so rendered client configs parse.
func Endpoints() app.Endpoints {
	return app.Endpoints{PublicHost: "vpn.example.net", WGPort: 51820, WGPublicKey: "c2VydmVyc2VydmVyc2VydmVyc2VydmVyc2VydmVyMDA=",
		SSPort: 8388, MTProtoPort: 443}
}

// Node is a service layer on a real store in a test's temporary directory.
type Node struct {
	Svc     *app.Service
	Store   *store.Store
	Cache   *cache.Cache
	DataKey keyring.Key
	// Clock drives Svc, unless an option replaced app.Options.Now.
	Clock *Clock
	// Dir is the temporary directory that holds the store's file; tests
	// may put other files (backups…) beside it.
	Dir string
}

// New builds a Node named "n1" with [Endpoints], its Clock at [Start] and
// an 8 MiB cache. Each opt may change the service's options before the
// service is built (admin ids, another clock, no endpoints…). When the
// test ends, after the cleanups the test registers later (servers that use
// the store stop first), New checks the store, reporting a failed check as
// a test error, and closes the store and the cache.
func New(t testing.TB, opts ...func(*app.Options)) *Node {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(store.Options{Path: filepath.Join(dir, "usipipo.db")})
	if err != nil {
		t.Fatalf("apptest: opening the store: %v", err)
	}
	c, err := cache.New(cache.Options{MaxBytes: 8 << 20})
	if err != nil {
		st.Close()
		t.Fatalf("apptest: cache: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Check(); err != nil {
			t.Errorf("store check: %v", err)
		}
		st.Close()
		c.Close()
	})
	dk, err := keyring.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("apptest: data key: %v", err)
	}
	clk := NewClock(Start())
	o := app.Options{Store: st, DataKey: dk, Cache: c, Node: "n1", Now: clk.Now, Ends: Endpoints()}
	for _, f := range opts {
		f(&o)
	}
	svc, err := app.New(o)
	if err != nil {
		t.Fatalf("apptest: service layer: %v", err)
	}
	return &Node{Svc: svc, Store: st, Cache: c, DataKey: dk, Clock: clk, Dir: dir}
}
