package store

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/usipipo/usipipo/store/model"
)

// An Outline key's dynamic-token hash is an index to the key: unique,
// kept through rotation and revocation, given once to older keys.
func TestDynamicTokenIndex(t *testing.T) {
	s := openTest(t)
	g := newIDs(3)
	u := newUser(g, epoch, 5)
	mustDo(t, s, epoch, u)
	h1, h2, h3 := fmt.Sprintf("%064x", 1), fmt.Sprintf("%064x", 2), fmt.Sprintf("%064x", 3)
	do := func(cmd Command) error { return s.Do(context.Background(), meta(epoch), cmd) }

	k := newKey(g, epoch, u.ID, ByAdmin)
	k.Type, k.Dynamic, k.DynHash = model.Outline, model.Sealed("tok"), h1
	mustDo(t, s, epoch, k)
	if got, err := s.KeyByDynamicHash(h1); err != nil || got.ID != k.ID {
		t.Fatalf("lookup: %v %v", got, err)
	}
	if _, err := s.KeyByDynamicHash(h2); !errors.Is(err, model.ErrNotFound) {
		t.Fatalf("unknown hash: %v", err)
	}
	for name, c := range map[string]struct {
		cmd  Command
		want error
	}{
		"same hash": {func() Command {
			d := newKey(g, epoch, u.ID, ByAdmin)
			d.Type, d.Dynamic, d.DynHash = model.Outline, model.Sealed("x"), h1
			return d
		}(), model.ErrExists},
		"wireguard": {func() Command {
			d := newKey(g, epoch, u.ID, ByAdmin)
			d.Dynamic, d.DynHash = model.Sealed("x"), h3
			return d
		}(), model.ErrInvalid},
		"hash alone": {func() Command { d := newKey(g, epoch, u.ID, ByAdmin); d.Type, d.DynHash = model.Outline, h3; return d }(), model.ErrInvalid},
		"not hex": {func() Command {
			d := newKey(g, epoch, u.ID, ByAdmin)
			d.Type, d.Dynamic, d.DynHash = model.Outline, model.Sealed("x"), "XYZ"
			return d
		}(), model.ErrInvalid},
		"update to taken": {UpdateKey{KeyID: newOutline(t, s, g, u.ID, h2), Dynamic: model.Sealed("y"), DynHash: h1}, model.ErrExists},
	} {
		if err := do(c.cmd); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	// A rotation keeps the token; a revoked key keeps its index entry, so
	// its URL can say it was revoked.
	mustDo(t, s, epoch, UpdateKey{KeyID: k.ID, Secret: model.Sealed("rotated")})
	mustDo(t, s, epoch, SetKeyStatus{KeyID: k.ID, Status: model.KeyRevoked})
	if got, err := s.KeyByDynamicHash(h1); err != nil || got.Status != model.KeyRevoked || string(got.Dynamic) != "tok" {
		t.Fatalf("after rotation and revocation: %+v %v", got, err)
	}
}

func newOutline(t *testing.T, s *Store, g *ids, user, hash string) string {
	k := newKey(g, epoch, user, ByAdmin)
	k.Type, k.Dynamic, k.DynHash = model.Outline, model.Sealed("t"), hash
	mustDo(t, s, epoch, k)
	return k.ID
}
