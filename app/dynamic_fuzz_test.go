package app

import (
	"errors"
	"strings"
	"testing"

	"github.com/usipipo/usipipo/store/model"
	"github.com/usipipo/usipipo/vpn/outline"
)

// FuzzDynamicToken feeds the public listener's token lookup whatever a
// client may put in the URL path: only the real token resolves, anything
// else is not found, nothing panics.
func FuzzDynamicToken(f *testing.F) {
	n := newTestNode(f)
	svc, err := New(Options{Store: n.st, DataKey: n.svc.dataKey, Node: "n1", Now: n.clock.Now,
		Ends: Endpoints{PublicHost: "vpn.example.net", SSPort: 8388, PublicPort: 8443}})
	if err != nil {
		f.Fatal(err)
	}
	u, _ := svc.RegisterUser(ctx(), ActorCLI, NewUser{TelegramID: 3})
	k, err := svc.CreateKey(ctx(), ActorCLI, KeyRequest{UserID: u.ID, Type: model.Outline, Admin: true})
	if err != nil {
		f.Fatal(err)
	}
	conf, _ := svc.KeyConfig(ctx(), k.ID)
	real, _, _ := strings.Cut(conf.Dynamic[strings.Index(conf.Dynamic, DynamicPath)+len(DynamicPath):], "#")
	for _, seed := range []string{real, "", "a", real[:23], real + "=", strings.ToUpper(real), "%2e%2e", strings.Repeat("A", 100)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		dk, err := svc.DynamicKey(ctx(), tok)
		switch {
		case tok == real:
			if err != nil || dk.Secret.Password == "" {
				t.Fatalf("the real token: %+v %v", dk, err)
			}
		case !errors.Is(err, outline.ErrNotFound):
			t.Fatalf("token %q: %+v %v", tok, dk, err)
		}
	})
}
