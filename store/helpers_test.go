package store

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/usipipo/usipipo/store/model"
)

// openTest opens a store in a temp dir and, when the test ends, checks the
// file's consistency and rebuilds every index to compare (bbolt's
// MustCreateDB idea, for our invariants).
func openTest(t testing.TB) *Store {
	t.Helper()
	s, err := Open(Options{Path: filepath.Join(t.TempDir(), "usipipo.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Check(); err != nil {
			t.Errorf("store check at cleanup: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

var epoch = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// ids makes deterministic record ids from a seeded source.
type ids struct{ r *rand.ChaCha8 }

func newIDs(seed byte) *ids { return &ids{rand.NewChaCha8([32]byte{seed})} }

func (g *ids) next(at time.Time) string {
	id, err := model.NewID(at, g.r)
	if err != nil {
		panic(err)
	}
	return id
}

func meta(at time.Time) Meta { return Meta{At: at, Actor: "test"} }

func mustDo(t testing.TB, s *Store, at time.Time, cmd Command) {
	t.Helper()
	if err := s.Do(context.Background(), meta(at), cmd); err != nil {
		t.Fatalf("%s: %v", cmd.Kind(), err)
	}
}

func newUser(g *ids, at time.Time, tg int64) CreateUser {
	id := g.next(at)
	return CreateUser{ID: id, TelegramID: tg, UserKey: model.Sealed("sealed-user-key"), Language: "es",
		ReferralCode: "r" + id[len(id)-8:]}
}

func testPlan(g *ids, maxKeys int) model.Plan {
	return model.Plan{ID: g.next(epoch), Name: "basic", DurationDays: 30, MaxKeys: maxKeys,
		DataCapBytes: 1 << 30, Protocols: []model.KeyType{model.WireGuard, model.Outline, model.MTProto},
		PriceStars: 100, PriceUSDCents: 299, Active: true}
}

func newKey(g *ids, at time.Time, user string, grant Grant) CreateKey {
	return CreateKey{ID: g.next(at), UserID: user, Type: model.WireGuard, Name: "phone", Node: "n1",
		Grant: grant, Secret: model.Sealed("sealed"), Limits: model.Limits{ExpiresAt: at.Add(72 * time.Hour)}}
}

// dump returns every bucket's keys and values, for byte-for-byte comparison.
func dump(t testing.TB, s *Store) map[string][][2][]byte {
	t.Helper()
	out := map[string][][2][]byte{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			var rows [][2][]byte
			err := b.ForEach(func(k, v []byte) error {
				rows = append(rows, [2][]byte{append([]byte(nil), k...), append([]byte(nil), v...)})
				return nil
			})
			out[string(name)] = rows
			return err
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func equalDumps(a, b map[string][][2][]byte) error {
	if len(a) != len(b) {
		return fmt.Errorf("%d buckets vs %d", len(a), len(b))
	}
	for name, ea := range a {
		eb := b[name]
		if len(ea) != len(eb) {
			return fmt.Errorf("bucket %s: %d entries vs %d", name, len(ea), len(eb))
		}
		for i := range ea {
			if !bytes.Equal(ea[i][0], eb[i][0]) || !bytes.Equal(ea[i][1], eb[i][1]) {
				return fmt.Errorf("bucket %s entry %d: %q=%q vs %q=%q", name, i, ea[i][0], ea[i][1], eb[i][0], eb[i][1])
			}
		}
	}
	return nil
}
