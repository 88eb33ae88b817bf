package app

import (
	"testing"
	"time"

	"github.com/usipipo/usipipo/store/model"
)

// The decoded-record cache follows every change of the record and hands
// out copies.
func TestUserRecordCacheFollowsWrites(t *testing.T) {
	n := newTestNode(t)
	u, _ := n.svc.RegisterUser(ctx(), ActorCLI, NewUser{TelegramID: 77})
	a, err := n.svc.userRecord(ctx(), u.ID)
	if err != nil || a.Banned {
		t.Fatal(err)
	}
	n.svc.cache.Wait()
	if err := n.svc.GrantRole(ctx(), ActorCLI, u.ID, model.RoleAdmin, time.Time{}, false); err != nil {
		t.Fatal(err)
	}
	b, _ := n.svc.userRecord(ctx(), u.ID)
	if len(b.Roles) != 1 || b.Version == a.Version {
		t.Fatalf("stale record after a write: %+v", b)
	}
	n.svc.cache.Wait()
	b.Roles[0].Role = model.RoleSuperadmin // the caller's copy only
	c, _ := n.svc.userRecord(ctx(), u.ID)
	if c.Roles[0].Role != model.RoleAdmin {
		t.Fatal("a caller changed the cached record")
	}
	if err := n.svc.Ban(ctx(), ActorCLI, u.ID, "x"); err != nil {
		t.Fatal(err)
	}
	if d, _ := n.svc.userRecord(ctx(), u.ID); !d.Banned {
		t.Fatal("ban not seen")
	}
	if _, err := n.svc.userRecord(ctx(), "0000000000000000000000000z"); err == nil {
		t.Fatal("unknown user found")
	}
}

// BenchmarkUserRecord compares the cached decoded record (one bbolt get,
// a hash and a comparison) with decoding it on every read, same run.
func BenchmarkUserRecord(b *testing.B) {
	n := newTestNode(b)
	u, _ := n.svc.RegisterUser(ctx(), ActorCLI, NewUser{TelegramID: 78, Username: "bench", FirstName: "Bench"})
	n.svc.GrantRole(ctx(), ActorCLI, u.ID, model.RoleAdmin, n.clock.Now().Add(time.Hour), false)
	n.svc.userRecord(ctx(), u.ID)
	n.svc.cache.Wait()
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := n.st.User(u.ID); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := n.svc.userRecord(ctx(), u.ID); err != nil {
				b.Fatal(err)
			}
		}
	})
}
