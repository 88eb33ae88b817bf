package pay

import (
	"errors"
	"testing"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// Credits buy slots and data at the one price function's Stars price, once
// per idempotency key, and never when the balance is short.
func TestSpendCredits(t *testing.T) {
	w := newWorld(t)
	uid, _ := w.user("")
	w.do(store.AddCredits{Entry: model.CreditEntry{ID: w.id(), UserID: uid, Amount: 200, Reason: "gift", IdempotencyKey: "g1"}})
	slot := Product{Kind: KindSlots, Qty: 2}
	cost, err := w.svc.CreditCost(slot)
	stars, _, perr := w.svc.Price(slot)
	if err != nil || perr != nil || cost != stars || cost != 100 {
		t.Fatalf("slot cost %d (%v), stars %d (%v)", cost, err, stars, perr)
	}
	bal, err := w.svc.SpendCredits(ctx(), "test", uid, slot, "press-1")
	if err != nil || bal != 100 {
		t.Fatalf("spend: %d %v", bal, err)
	}
	if bal, err = w.svc.SpendCredits(ctx(), "test", uid, slot, "press-1"); err != nil || bal != 100 {
		t.Fatalf("retry of the same press: %d %v", bal, err)
	}
	if u, _ := w.st.User(uid); u.ExtraSlots != 2 {
		t.Fatalf("slots %d, want 2", u.ExtraSlots)
	}

	// A data package for the user's own capped key.
	w.do(store.GrantPlan{SubID: w.id(), UserID: uid, PlanID: w.plan.ID, Months: 1, Source: "test"})
	key := store.CreateKey{ID: w.id(), UserID: uid, Type: model.WireGuard, Name: "k", Node: "n", Grant: store.ByPlan, Secret: model.Sealed("s")}
	w.do(key)
	data := Product{Kind: KindData, RefID: key.ID, Qty: DefaultCatalogue().DataPackages[0].Qty}
	if _, err := w.svc.SpendCredits(ctx(), "test", uid, data, "press-2"); err != nil {
		t.Fatalf("data for credits: %v", err)
	}
	k, _ := w.st.Key(key.ID)
	if k.Limits.DataCap != w.plan.DataCapBytes+uint64(data.Qty) {
		t.Fatalf("cap %d", k.Limits.DataCap)
	}
	if bal, _ := w.st.Balance(uid); bal != 25 {
		t.Fatalf("balance %d, want 25", bal)
	}
	// Short balance: refused, nothing moves.
	if _, err := w.svc.SpendCredits(ctx(), "test", uid, Product{Kind: KindSlots, Qty: 1}, "press-3"); !errors.Is(err, model.ErrBalance) {
		t.Fatalf("short balance: %v", err)
	}
	if u, _ := w.st.User(uid); u.ExtraSlots != 2 {
		t.Fatalf("slots %d after a refused spend", u.ExtraSlots)
	}
	// Not sold for credits; not someone else's key.
	other, _ := w.user("")
	for _, bad := range []struct {
		user string
		pr   Product
	}{{uid, Product{Kind: KindPlan, RefID: w.plan.ID, Months: 1}}, {uid, Product{Kind: KindCredits, Qty: 100}}, {other, data}} {
		if _, err := w.svc.SpendCredits(ctx(), "test", bad.user, bad.pr, "press-x"); !errors.Is(err, ErrNotForSale) {
			t.Fatalf("%+v: %v, want ErrNotForSale", bad, err)
		}
	}
	if _, err := w.svc.SpendCredits(ctx(), "test", uid, slot, ""); !errors.Is(err, model.ErrInvalid) {
		t.Fatalf("no idempotency key: %v", err)
	}
	if bad, err := w.svc.CheckLedger(ctx()); err != nil || len(bad) != 0 {
		t.Fatalf("ledger check after spending: %+v %v", bad, err)
	}
}
