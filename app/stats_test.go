package app

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

func TestStatsCountsAndSeries(t *testing.T) {
	n := newTestNode(t)
	old, _ := n.svc.RegisterUser(ctx(), ActorCLI, NewUser{TelegramID: 1})
	n.clock.Add(48 * time.Hour)
	u, _ := n.svc.RegisterUser(ctx(), ActorCLI, NewUser{TelegramID: 2})
	n.svc.RegisterUser(ctx(), ActorCLI, NewUser{TelegramID: 3})
	if _, err := n.svc.CreateKey(ctx(), ActorCLI, KeyRequest{UserID: u.ID, Type: model.Outline, Trial: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.svc.CreateKey(ctx(), ActorCLI, KeyRequest{UserID: old.ID, Type: model.WireGuard, Admin: true}); err != nil {
		t.Fatal(err)
	}
	now := n.clock.Now()
	// Two paid payments today (Stars and USD), one pending, one paid
	// five days ago, outside a 3-day window.
	pay := func(amount int64, cur string, settle bool, at time.Time) {
		id, _ := n.svc.newID(at)
		m := store.Meta{At: at, Actor: "test"}
		if err := n.st.Do(ctx(), m, store.CreatePayment{Payment: model.Payment{ID: id, UserID: u.ID, Provider: "stars",
			Amount: amount, Currency: cur, Product: model.Product{Kind: "slots", Qty: 1}}}); err != nil {
			t.Fatal(err)
		}
		if settle {
			if err := n.st.Do(ctx(), m, store.SettlePayment{PaymentID: id, ChargeID: "c" + id, Amount: amount, Currency: cur}); err != nil {
				t.Fatal(err)
			}
		}
	}
	pay(150, "XTR", true, now)
	pay(499, "USD", true, now)
	pay(1000, "XTR", false, now)
	pay(77, "XTR", true, now.Add(-5*24*time.Hour))
	if err := n.st.RecordUsage(now, []store.UsageSample{{ID: "a", Rx: 10, Tx: 100}, {ID: "b", Rx: 1, Tx: 2}}); err != nil {
		t.Fatal(err)
	}
	if err := n.st.RecordUsage(now.Add(-24*time.Hour), []store.UsageSample{{ID: "a", Rx: 5, Tx: 5}}); err != nil {
		t.Fatal(err)
	}
	st, err := n.svc.Stats(ctx(), 3)
	if err != nil {
		t.Fatal(err)
	}
	if st.Users != 3 || st.ActiveUsers != 2 || st.ActiveKeys[model.Outline] != 1 || st.ActiveKeys[model.WireGuard] != 1 || st.ActiveProxies != 0 {
		t.Fatalf("counts %+v", st)
	}
	if len(st.Days) != 3 {
		t.Fatalf("days %+v", st.Days)
	}
	today, yesterday, first := st.Days[2], st.Days[1], st.Days[0]
	if today.Day != now.Format(time.DateOnly) || today.RevenueStars != 150 || today.RevenueUSDCents != 499 ||
		today.NewUsers != 2 || today.BytesIn != 11 || today.BytesOut != 102 {
		t.Fatalf("today %+v", today)
	}
	if yesterday.BytesIn != 5 || yesterday.RevenueStars != 0 || first.NewUsers != 1 {
		t.Fatalf("earlier days %+v %+v", yesterday, first)
	}
	wide, _ := n.svc.Stats(ctx(), 7)
	if wide.Days[1].RevenueStars != 77 || wide.Days[4].NewUsers != 1 {
		t.Fatalf("7-day window %+v", wide.Days)
	}
	// Served from the cache within the slot; callers cannot corrupt it.
	st.ActiveKeys[model.Outline] = 99
	st.Days[2].NewUsers = 99
	again, _ := n.svc.Stats(ctx(), 3)
	if again.ActiveKeys[model.Outline] != 1 || again.Days[2].NewUsers != 2 {
		t.Fatalf("cached stats changed by a caller: %+v", again)
	}
	for _, d := range []int{0, -1, MaxStatsDays + 1} {
		if _, err := n.svc.Stats(ctx(), d); !errors.Is(err, model.ErrInvalid) {
			t.Errorf("days %d: %v", d, err)
		}
	}
}

func TestIDTimeRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 28, 23, 59, 59, 123e6, time.UTC)
	id, _ := model.NewID(at, nil)
	got, ok := store.IDTime(id)
	if !ok || !got.Equal(at) {
		t.Fatalf("IDTime(%s) = %v %v, want %v", id, got, ok, at)
	}
	if _, ok := store.IDTime("nope"); ok {
		t.Fatal("IDTime accepted a non-id")
	}
}

// BenchmarkStats10k computes the dashboard summary (30 days) over 10,000
// users with an active key each: what one recomputation per statsFreshness
// costs, warm (key protocols cached by version, as on a running node) and
// cold (no cache: every active key decoded).
func BenchmarkStats10k(b *testing.B) {
	for _, warm := range []bool{true, false} {
		b.Run(fmt.Sprintf("warm=%v", warm), func(b *testing.B) {
			n := newTestNode(b)
			benchKeys(b, n, 10_000)
			if !warm {
				n.svc.cache = nil
			}
			now := n.clock.Now()
			n.svc.computeStats(now, 30)
			n.svc.cache.Wait()
			b.ResetTimer()
			for range b.N {
				st, err := n.svc.computeStats(now, 30)
				if err != nil || st.ActiveKeys[model.WireGuard] != 10_000 || st.Users != 10_000 {
					b.Fatal(err)
				}
			}
		})
	}
}
