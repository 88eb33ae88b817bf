package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/usipipo/usipipo/store/model"
)

// A command repeated under the same key changes nothing and the first
// result stays readable through OnceRef; another key applies again.
func TestOnceKeyAppliesACommandOnce(t *testing.T) {
	s := openTest(t)
	g := newIDs(7)
	u := newUser(g, epoch, 70)
	mustDo(t, s, epoch, u)
	plan := testPlan(g, 5)
	mustDo(t, s, epoch, PutPlan{Plan: plan})

	grant := func(key string) GrantPlan {
		return GrantPlan{SubID: g.next(epoch), UserID: u.ID, PlanID: plan.ID, Months: 1, Source: "admin", Once: key}
	}
	first := grant("g1")
	mustDo(t, s, epoch, first)
	mustDo(t, s, epoch, grant("g1"))
	if ref, ok, err := s.OnceRef("g1"); err != nil || !ok || ref != first.SubID {
		t.Fatalf("OnceRef(g1) = %q %v %v, want %s", ref, ok, err, first.SubID)
	}
	subs, _, err := s.Subscriptions(u.ID, Page{Limit: MaxLimit})
	if err != nil || len(subs) != 1 {
		t.Fatalf("%d subscriptions (%v) after a repeated grant, want 1", len(subs), err)
	}
	mustDo(t, s, epoch, grant("g2"))
	if subs, _, _ = s.Subscriptions(u.ID, Page{Limit: MaxLimit}); len(subs) != 2 {
		t.Fatalf("%d subscriptions after a second key, want 2", len(subs))
	}

	k := newKey(g, epoch, u.ID, ByPlan)
	k.Once = "k1"
	mustDo(t, s, epoch, k)
	again := newKey(g, epoch, u.ID, ByPlan)
	again.Once = "k1"
	mustDo(t, s, epoch, again)
	if _, err := s.Key(again.ID); !errors.Is(err, model.ErrNotFound) {
		t.Fatalf("repeated creation made key %s: %v", again.ID, err)
	}

	mustDo(t, s, epoch, UpdateKey{KeyID: k.ID, Secret: model.Sealed("one"), Public: "p1", Once: "r1"})
	mustDo(t, s, epoch, UpdateKey{KeyID: k.ID, Secret: model.Sealed("two"), Public: "p2", Once: "r1"})
	if got, _ := s.Key(k.ID); got.Public != "p1" {
		t.Fatalf("repeated rotation left public %q, want p1", got.Public)
	}

	tk := OpenTicket{ID: g.next(epoch), UserID: u.ID, Subject: model.Sealed("s"), Text: model.Sealed("t"), Once: "t1"}
	mustDo(t, s, epoch, tk)
	mustDo(t, s, epoch, OpenTicket{ID: g.next(epoch), UserID: u.ID, Subject: model.Sealed("s"), Text: model.Sealed("t"), Once: "t1"})
	reply := ReplyTicket{TicketID: tk.ID, From: "admin:x", Text: model.Sealed("r"), Once: "t2"}
	mustDo(t, s, epoch.Add(time.Second), reply)
	mustDo(t, s, epoch.Add(time.Second), reply)
	ts, _, _ := s.Tickets("", u.ID, Page{Limit: MaxLimit})
	if len(ts) != 1 || len(ts[0].Messages) != 2 {
		t.Fatalf("tickets %d (messages %v), want 1 with 2 messages", len(ts), ts)
	}

	p := CreateProxy{ID: g.next(epoch), UserID: u.ID, Node: "n1", Grant: ByAdmin, Secret: model.Sealed("s"), Once: "p1"}
	mustDo(t, s, epoch, p)
	p2 := p
	p2.ID = g.next(epoch)
	mustDo(t, s, epoch, p2)
	if ps, _, _ := s.Proxies(u.ID, Page{Limit: MaxLimit}); len(ps) != 1 {
		t.Fatalf("%d proxies after a repeated creation, want 1", len(ps))
	}

	long := UpdateKey{KeyID: k.ID, Name: "n", Once: strings.Repeat("x", maxOnceKey+1)}
	if err := s.Do(context.Background(), meta(epoch), long); !errors.Is(err, model.ErrInvalid) {
		t.Fatalf("overlong key: %v, want ErrInvalid", err)
	}
	if _, ok, _ := s.OnceRef("unused"); ok {
		t.Fatal("OnceRef of an unused key reported one")
	}
}
