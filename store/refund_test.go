package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/usipipo/usipipo/store/model"
)

type payWorld struct {
	t    *testing.T
	s    *Store
	g    *ids
	at   time.Time
	user string
	plan model.Plan
}

func newPayWorld(t *testing.T) *payWorld {
	w := &payWorld{t: t, s: openTest(t), g: newIDs(7), at: epoch}
	referrer := newUser(w.g, w.at, 1)
	mustDo(t, w.s, w.at, referrer)
	u := newUser(w.g, w.at, 2)
	u.ReferredBy, u.ReferralCredits = referrer.ID, 25
	mustDo(t, w.s, w.at, u)
	w.user = u.ID
	w.plan = testPlan(w.g, 1)
	mustDo(t, w.s, w.at, PutPlan{Plan: w.plan})
	return w
}

func (w *payWorld) buy(prod model.Product, charge string) string {
	w.t.Helper()
	id := w.g.next(w.at)
	mustDo(w.t, w.s, w.at, CreatePayment{Payment: model.Payment{ID: id, UserID: w.user, Provider: "stars",
		Amount: 100, Currency: "XTR", Product: prod}})
	var cmd Command = SettlePayment{PaymentID: id, ChargeID: charge, Amount: 100, Currency: "XTR",
		SubID: w.g.next(w.at), EntryID: w.g.next(w.at), VestID: w.g.next(w.at)}
	if prod.Kind == ProductData {
		cmd = SettleDataPayment{PaymentID: id, ChargeID: charge, Amount: 100, Currency: "XTR", VestID: w.g.next(w.at)}
	}
	mustDo(w.t, w.s, w.at, cmd)
	return id
}

func (w *payWorld) refund(payID, refundID string) error {
	return w.s.Do(context.Background(), meta(w.at), RefundPayment{PaymentID: payID, RefundID: refundID,
		EntryID: w.g.next(w.at), VestEntryID: w.g.next(w.at), Reason: "user"})
}

func (w *payWorld) key() *model.Key {
	w.t.Helper()
	k := newKey(w.g, w.at, w.user, ByPlan)
	mustDo(w.t, w.s, w.at, k)
	got, err := w.s.Key(k.ID)
	if err != nil {
		w.t.Fatal(err)
	}
	return got
}

func (w *payWorld) balances() (user, referrer int64) {
	u, _ := w.s.User(w.user)
	ub, _ := w.s.Balance(w.user)
	rb, _ := w.s.Balance(u.ReferredBy)
	return ub, rb
}

func TestRefundPlanRestoresPreviousState(t *testing.T) {
	w := newPayWorld(t)
	first := w.buy(model.Product{Kind: "plan", RefID: w.plan.ID, Months: 1}, "c1")
	k := w.key()
	exp1 := k.Limits.ExpiresAt
	w.at = w.at.Add(24 * time.Hour)
	second := w.buy(model.Product{Kind: "plan", RefID: w.plan.ID, Months: 2}, "c2")
	third := w.buy(model.Product{Kind: "plan", RefID: w.plan.ID, Months: 1}, "c3")
	k2, _ := w.s.Key(k.ID)
	if want := exp1.Add(90 * 24 * time.Hour); !k2.Limits.ExpiresAt.Equal(want) {
		t.Fatalf("after renewals expiry %v, want %v", k2.Limits.ExpiresAt, want)
	}
	// Refunding the middle renewal takes its 60 days off the one stacked on it.
	if err := w.refund(second, "c2"); err != nil {
		t.Fatal(err)
	}
	k3, _ := w.s.Key(k.ID)
	if want := exp1.Add(30 * 24 * time.Hour); !k3.Limits.ExpiresAt.Equal(want) || k3.Status != model.KeyActive {
		t.Fatalf("after refund expiry %v %s, want %v active", k3.Limits.ExpiresAt, k3.Status, want)
	}
	if err := w.refund(third, "c3"); err != nil {
		t.Fatal(err)
	}
	k4, _ := w.s.Key(k.ID)
	if !k4.Limits.ExpiresAt.Equal(exp1) {
		t.Fatalf("expiry %v, want the first purchase's %v", k4.Limits.ExpiresAt, exp1)
	}
	_, ref := w.balances()
	if ref != 25 {
		t.Fatalf("referrer %d, want 25 vested by the first payment", ref)
	}
	if err := w.refund(first, "c1"); err != nil {
		t.Fatal(err)
	}
	k5, _ := w.s.Key(k.ID)
	if k5.Status != model.KeySuspended || k5.Reason != ReasonRefunded {
		t.Fatalf("key %s %s after the last plan was refunded", k5.Status, k5.Reason)
	}
	if _, _, err := w.s.CurrentPlan(w.user, w.at); !errors.Is(err, model.ErrQuota) {
		t.Fatalf("a plan is still current: %v", err)
	}
	if _, ref := w.balances(); ref != 0 {
		t.Fatalf("referrer keeps %d after the vesting payment was refunded", ref)
	}
	// Idempotent by refund id; another refund of the same payment refused.
	if err := w.refund(first, "c1"); err != nil {
		t.Fatalf("repeated refund: %v", err)
	}
	if err := w.refund(first, "other"); !errors.Is(err, model.ErrState) {
		t.Fatalf("second refund id: %v", err)
	}
	p, _ := w.s.Payment(first)
	if p.Status != model.PayRefunded || !p.RefundedAt.Equal(w.at) {
		t.Fatalf("payment %+v", p)
	}
}

func TestRefundCreditsSlotsData(t *testing.T) {
	w := newPayWorld(t)
	w.buy(model.Product{Kind: "plan", RefID: w.plan.ID, Months: 1}, "p")
	cred := w.buy(model.Product{Kind: "credits", Qty: 40}, "c")
	mustDo(t, w.s, w.at, AddCredits{Entry: model.CreditEntry{ID: w.g.next(w.at), UserID: w.user, Amount: -30,
		Reason: "spend", IdempotencyKey: "spend1"}})
	if err := w.refund(cred, "c"); err != nil {
		t.Fatal(err)
	}
	if ub, _ := w.balances(); ub != -30 {
		t.Fatalf("balance %d, want -30 (refund may go negative)", ub)
	}

	slots := w.buy(model.Product{Kind: "slots", Qty: 1}, "s")
	k1 := w.key()
	w.at = w.at.Add(time.Second)
	k2 := w.key() // quota 1 + 1 slot
	if err := w.refund(slots, "s"); err != nil {
		t.Fatal(err)
	}
	a, _ := w.s.Key(k1.ID)
	b, _ := w.s.Key(k2.ID)
	if a.Status != model.KeyActive || b.Status != model.KeySuspended || b.Reason != ReasonSlotsRefunded {
		t.Fatalf("after slots refund: %s, %s %s", a.Status, b.Status, b.Reason)
	}
	if u, _ := w.s.User(w.user); u.ExtraSlots != 0 {
		t.Fatalf("extra slots %d", u.ExtraSlots)
	}

	// A data package: used in part, then refunded: the key is suspended.
	data := w.buy(model.Product{Kind: ProductData, RefID: k1.ID, Qty: 1 << 30}, "d")
	a, _ = w.s.Key(k1.ID)
	if a.Limits.DataCap != 2<<30 {
		t.Fatalf("cap %d after the package", a.Limits.DataCap)
	}
	mustDo(t, w.s, w.at, UsageBatch{Node: "n1", Start: w.at.Add(-time.Minute), End: w.at,
		Deltas: []UsageDelta{{ID: k1.ID, Rx: 3 << 29}}})
	if err := w.refund(data, "d"); err != nil {
		t.Fatal(err)
	}
	a, _ = w.s.Key(k1.ID)
	if a.Limits.DataCap != 1<<30 || a.Status != model.KeySuspended || a.Reason != ReasonDataCap {
		t.Fatalf("after data refund: cap %d %s %s", a.Limits.DataCap, a.Status, a.Reason)
	}
}

func TestSettleDataRestoresCappedKey(t *testing.T) {
	w := newPayWorld(t)
	w.buy(model.Product{Kind: "plan", RefID: w.plan.ID, Months: 1}, "p")
	k := w.key()
	w.at = w.at.Add(time.Hour)
	mustDo(t, w.s, w.at, UsageBatch{Node: "n1", Start: w.at.Add(-time.Minute), End: w.at,
		Deltas: []UsageDelta{{ID: k.ID, Rx: 1 << 30}}})
	if got, _ := w.s.Key(k.ID); got.Status != model.KeySuspended {
		t.Fatalf("key %s at its cap", got.Status)
	}
	w.buy(model.Product{Kind: ProductData, RefID: k.ID, Qty: 1 << 30}, "d")
	if got, _ := w.s.Key(k.ID); got.Status != model.KeyActive {
		t.Fatalf("key %s %s after a data package", got.Status, got.Reason)
	}
}

func TestExpireAndReject(t *testing.T) {
	w := newPayWorld(t)
	id := w.g.next(w.at)
	mustDo(t, w.s, w.at, CreatePayment{Payment: model.Payment{ID: id, UserID: w.user, Provider: "qvapay",
		Amount: 299, Currency: "USD", Product: model.Product{Kind: "credits", Qty: 10}}})
	mustDo(t, w.s, w.at, ExpirePayment{PaymentID: id})
	if err := w.s.Do(context.Background(), meta(w.at), ExpirePayment{PaymentID: id}); !errors.Is(err, model.ErrState) {
		t.Fatalf("expiring twice: %v", err)
	}
	// A late charge still settles an expired invoice.
	mustDo(t, w.s, w.at, SettlePayment{PaymentID: id, ChargeID: "late", Amount: 299, Currency: "USD", EntryID: w.g.next(w.at)})
	mustDo(t, w.s, w.at, RejectPayment{Provider: "qvapay", Event: "callback", UserID: w.user, Ref: "x", Why: "forged"})
	es, _, err := w.s.Audit(AuditFilter{UserID: w.user, Action: RejectPayment{}.Kind()}, Page{Limit: 10})
	if err != nil || len(es) != 1 {
		t.Fatalf("rejection audit: %v %d", err, len(es))
	}
}

// The random streams exercise refunds that succeed, not only refusals.
func TestGeneratorRefunds(t *testing.T) {
	s := openTest(t)
	g := newGen(3)
	ops := g.ops(3000)
	errs, err := s.ApplyBatch(ops)
	if err != nil {
		t.Fatal(err)
	}
	ok := map[string]int{}
	for i, e := range errs {
		if e == nil {
			ok[ops[i].Cmd.Kind()]++
		}
	}
	for _, k := range []string{RefundPayment{}.Kind(), ExpirePayment{}.Kind(), SettlePayment{}.Kind()} {
		if ok[k] == 0 {
			t.Errorf("no %s accepted in 3000 generated commands: %v", k, ok)
		}
	}
}
