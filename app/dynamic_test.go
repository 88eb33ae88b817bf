package app

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
	"github.com/usipipo/usipipo/vpn/outline"
)

// withPublic is the test node's service with the public listener on port 8443.
func withPublic(t *testing.T, n *testNode) *Service {
	t.Helper()
	svc, err := New(Options{Store: n.st, DataKey: n.svc.dataKey, Node: "n1", Now: n.clock.Now,
		Ends: Endpoints{PublicHost: "vpn.example.net", SSPort: 8388, PublicPort: 8443}})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// tokenOf extracts the token of an ssconf:// URL.
func tokenOf(t *testing.T, url string) string {
	t.Helper()
	const pre = "ssconf://vpn.example.net:8443" + DynamicPath
	if !strings.HasPrefix(url, pre) {
		t.Fatalf("dynamic URL %q", url)
	}
	tok, _, _ := strings.Cut(strings.TrimPrefix(url, pre), "#")
	return tok
}

func TestDynamicKeyFollowsRotationAndRefuses(t *testing.T) {
	n := newTestNode(t)
	svc := withPublic(t, n)
	u, _ := svc.RegisterUser(ctx(), ActorCLI, NewUser{TelegramID: 7})
	k, err := svc.CreateKey(ctx(), ActorCLI, KeyRequest{UserID: u.ID, Type: model.Outline, Name: "móvil", Admin: true,
		Limits: model.Limits{ExpiresAt: n.clock.Now().Add(48 * time.Hour)}})
	if err != nil {
		t.Fatal(err)
	}
	conf, err := svc.KeyConfig(ctx(), k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(conf.Dynamic, "#m%C3%B3vil") {
		t.Fatalf("dynamic URL %q lacks the name", conf.Dynamic)
	}
	tok := tokenOf(t, conf.Dynamic)
	if len(tok) != 24 {
		t.Fatalf("token %q: want 24 base64url characters (144 bits)", tok)
	}
	if off, _ := n.svc.KeyConfig(ctx(), k.ID); off.Dynamic != "" {
		t.Fatalf("ssconf URL without a public listener: %q", off.Dynamic)
	}
	dk, err := svc.DynamicKey(ctx(), tok)
	if err != nil || dk.Refusal != "" || dk.Server != "vpn.example.net" || dk.Port != 8388 ||
		!strings.HasPrefix(conf.Text, outline.AccessKeyURL("vpn.example.net", 8388, dk.Secret, "")[:20]) {
		t.Fatalf("dynamic key %+v, %v (config %q)", dk, err, conf.Text)
	}
	if conf.Text != outline.AccessKeyURL("vpn.example.net", 8388, dk.Secret, "móvil") {
		t.Fatalf("dynamic secret differs from the ss:// key: %q", conf.Text)
	}

	if _, err := svc.RotateKey(ctx(), ActorCLI, k.ID); err != nil {
		t.Fatal(err)
	}
	conf2, _ := svc.KeyConfig(ctx(), k.ID)
	dk2, err := svc.DynamicKey(ctx(), tok)
	if err != nil || conf2.Dynamic != conf.Dynamic || dk2.Secret.Password == dk.Secret.Password {
		t.Fatalf("after rotation: url %q → %q, password changed %v, %v", conf.Dynamic, conf2.Dynamic,
			dk2.Secret.Password != dk.Secret.Password, err)
	}

	for _, bad := range []string{"", "short", strings.Repeat("A", 24), tok + "x", "../../etc/passwd-000000000000"} {
		if _, err := svc.DynamicKey(ctx(), bad); !errors.Is(err, outline.ErrNotFound) {
			t.Fatalf("token %q: %v", bad, err)
		}
	}

	refused := func(want string) {
		t.Helper()
		dk, err := svc.DynamicKey(ctx(), tok)
		if err != nil || !strings.Contains(dk.Refusal, want) || dk.Secret.Password != "" {
			t.Fatalf("want a refusal with %q, got %+v, %v", want, dk, err)
		}
	}
	if err := svc.SetKeyStatus(ctx(), ActorCLI, k.ID, model.KeySuspended, "abuse"); err != nil {
		t.Fatal(err)
	}
	refused("suspendida")
	if err := svc.SetKeyStatus(ctx(), ActorCLI, k.ID, model.KeyActive, ""); err != nil {
		t.Fatal(err)
	}
	n.clock.Add(49 * time.Hour)
	refused("expiró")
	if err := svc.SetLanguage(ctx(), ActorCLI, u.ID, "en"); err != nil {
		t.Fatal(err)
	}
	refused("has expired")
	if err := svc.SetKeyStatus(ctx(), ActorCLI, k.ID, model.KeyRevoked, ""); err != nil {
		t.Fatal(err)
	}
	refused("revoked")
}

func TestDynamicKeyOverCap(t *testing.T) {
	n := newTestNode(t)
	svc := withPublic(t, n)
	u, _ := svc.RegisterUser(ctx(), ActorCLI, NewUser{TelegramID: 8})
	k, err := svc.CreateKey(ctx(), ActorCLI, KeyRequest{UserID: u.ID, Type: model.Outline, Admin: true,
		Limits: model.Limits{DataCap: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	conf, _ := svc.KeyConfig(ctx(), k.ID)
	tok := tokenOf(t, conf.Dynamic)
	now := n.clock.Now()
	if err := n.st.Do(ctx(), store.Meta{At: now}, store.UsageBatch{Node: "n1", Start: now.Add(-time.Minute), End: now,
		Deltas: []store.UsageDelta{{ID: k.ID, Rx: 600, Tx: 600}}}); err != nil {
		t.Fatal(err)
	}
	if dk, err := svc.DynamicKey(ctx(), tok); err != nil || !strings.Contains(dk.Refusal, "agotó sus datos") {
		t.Fatalf("over cap: %+v, %v", dk, err)
	}
}

func TestDynamicTokenBackfillAndPrefix(t *testing.T) {
	n := newTestNode(t)
	svc := withPublic(t, n)
	u, _ := svc.RegisterUser(ctx(), ActorCLI, NewUser{TelegramID: 9})
	// A key as a node before dynamic tokens made it: no token, no hash.
	id, _ := svc.newID(n.clock.Now())
	old := store.CreateKey{ID: id, UserID: u.ID, Type: model.Outline, Name: "old", Node: "n1", Grant: store.ByAdmin}
	if err := svc.keyMaterial(&old); err != nil {
		t.Fatal(err)
	}
	if err := n.st.Do(ctx(), svc.meta(ActorCLI), old); err != nil {
		t.Fatal(err)
	}
	if c, _ := svc.KeyConfig(ctx(), old.ID); c.Dynamic != "" {
		t.Fatalf("a key without a token got URL %q", c.Dynamic)
	}
	if _, err := svc.CreateKey(ctx(), ActorCLI, KeyRequest{UserID: u.ID, Type: model.WireGuard, Admin: true}); err != nil {
		t.Fatal(err)
	}
	if got, err := svc.BackfillDynamicTokens(ctx()); err != nil || got != 1 {
		t.Fatalf("backfill gave %d tokens, %v; want 1", got, err)
	}
	if got, err := svc.BackfillDynamicTokens(ctx()); err != nil || got != 0 {
		t.Fatalf("second backfill gave %d, %v", got, err)
	}
	c, _ := svc.KeyConfig(ctx(), old.ID)
	if _, err := svc.DynamicKey(ctx(), tokenOf(t, c.Dynamic)); err != nil {
		t.Fatal(err)
	}

	// Outline's salt prefix: in the ss:// URL, percent-encoded, and raw in the dynamic key.
	p := svc.Policy()
	p.OutlinePrefix = "\u0016\u0003\u0001\u0000\u00a8"
	if err := svc.SetPolicy(ctx(), ActorCLI, p); err != nil {
		t.Fatal(err)
	}
	c, _ = svc.KeyConfig(ctx(), old.ID)
	if !strings.Contains(c.Text, "/?outline=1&prefix=%16%03%01%00%C2%A8#old") {
		t.Fatalf("prefix missing from %q", c.Text)
	}
	if dk, _ := svc.DynamicKey(ctx(), tokenOf(t, c.Dynamic)); dk.Prefix != "\x16\x03\x01\x00\xa8" {
		t.Fatalf("dynamic prefix %q", dk.Prefix)
	}
	p.OutlinePrefix = "\u0100"
	if err := svc.SetPolicy(ctx(), ActorCLI, p); !errors.Is(err, model.ErrInvalid) {
		t.Fatalf("a prefix that is not bytes: %v", err)
	}
}
