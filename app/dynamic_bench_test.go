package app

import (
	"strings"
	"testing"

	"github.com/usipipo/usipipo/store/model"
)

// BenchmarkDynamicKey is the service's cost of one ssconf:// fetch (token
// check, one index read, the key and its owner, the cached secret, the
// policy), beside a plain store read of the same key as the same-run
// baseline.
func BenchmarkDynamicKey(b *testing.B) {
	n := newTestNode(b)
	svc, err := New(Options{Store: n.st, DataKey: n.svc.dataKey, Cache: n.svc.cache, Node: "n1", Now: n.clock.Now,
		Ends: Endpoints{PublicHost: "vpn.example.net", SSPort: 8388, PublicPort: 8443}})
	if err != nil {
		b.Fatal(err)
	}
	u, _ := svc.RegisterUser(ctx(), ActorCLI, NewUser{TelegramID: 1})
	var toks, ids []string
	for range 50 {
		k, err := svc.CreateKey(ctx(), ActorCLI, KeyRequest{UserID: u.ID, Type: model.Outline, Admin: true})
		if err != nil {
			b.Fatal(err)
		}
		c, _ := svc.KeyConfig(ctx(), k.ID)
		tok, _, _ := strings.Cut(c.Dynamic[strings.Index(c.Dynamic, DynamicPath)+len(DynamicPath):], "#")
		toks = append(toks, tok)
		ids = append(ids, k.ID)
	}
	b.Run("baseline=store-read", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := n.st.Key(ids[i%len(ids)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("dynamic-key", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := svc.DynamicKey(ctx(), toks[i%len(toks)]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
