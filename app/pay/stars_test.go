package pay

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// buyStars takes a Stars purchase through pre-checkout and payment, as
// Telegram delivers them, and returns the payment id and charge id.
func (w *world) buyStars(userID string, tg int64, pr Product) (payID, charge string) {
	w.t.Helper()
	inv, payload := w.starsInvoice(userID, pr)
	q := "pcq-" + inv.PaymentID
	if err := w.svc.HandleUpdate(ctx(), w.update(preCheckoutUpdate(q, tg, inv.Amount, payload))); err != nil {
		w.t.Fatal(err)
	}
	if ok, seen := w.bot.answer(q); !ok || !seen {
		w.t.Fatalf("pre-checkout answered ok=%v seen=%v", ok, seen)
	}
	charge = "stxCHARGE-" + inv.PaymentID
	if err := w.svc.HandleUpdate(ctx(), w.update(paidUpdate(tg, inv.Amount, payload, charge))); err != nil {
		w.t.Fatal(err)
	}
	return inv.PaymentID, charge
}

func TestStarsPurchaseGrantsOnceWithReceipts(t *testing.T) {
	w := newWorld(t)
	ref, _ := w.user("")
	uid, tg := w.user(ref)
	inv, payload := w.starsInvoice(uid, Product{Kind: KindPlan, RefID: w.plan.ID, Months: 3})
	if inv.Amount != 270 || inv.Currency != XTR {
		t.Fatalf("invoice %+v", inv)
	}
	sent := w.bot.invoices[0]
	if sent["currency"] != "XTR" || sent["payload"] != payload || sent["provider_token"] != nil || fmt.Sprint(sent["chat_id"]) != fmt.Sprint(tg) {
		t.Fatalf("sendInvoice %v", sent)
	}
	if len(payload) > 128 {
		t.Fatalf("payload of %d bytes", len(payload))
	}
	// Before payment nothing is granted, even after a pre-checkout.
	if err := w.svc.HandleUpdate(ctx(), w.update(preCheckoutUpdate("q1", tg, 270, payload))); err != nil {
		t.Fatal(err)
	}
	if ok, _ := w.bot.answer("q1"); !ok || len(w.subs(uid)) != 0 {
		t.Fatalf("pre-checkout ok=%v subs=%d", ok, len(w.subs(uid)))
	}
	paid := w.update(paidUpdate(tg, 270, payload, "charge-1"))
	if err := w.svc.HandleUpdate(ctx(), paid); err != nil {
		t.Fatal(err)
	}
	// Delivered again, and concurrently on eight goroutines: one grant.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if err := w.svc.HandleUpdate(ctx(), paid); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if err := w.svc.HandleUpdate(ctx(), paid); err != nil {
		t.Fatal(err)
	}
	subs := w.subs(uid)
	if len(subs) != 1 || subs[0].Source != inv.PaymentID {
		t.Fatalf("subscriptions %+v", subs)
	}
	if want := w.clock.Now().Add(90 * 24 * time.Hour); !subs[0].ExpiresAt.Equal(want) {
		t.Fatalf("expires %v, want %v", subs[0].ExpiresAt, want)
	}
	p := w.payment(inv.PaymentID)
	if p.Status != model.PayPaid || p.ProviderChargeID != "charge-1" {
		t.Fatalf("payment %+v", p)
	}
	if got := w.bot.sent(tg); len(got) != 1 || !strings.Contains(got[0], "Payment received") {
		t.Fatalf("user receipts %q", got)
	}
	if got := w.bot.sent(adminChat); len(got) != 1 {
		t.Fatalf("admin notices %q", got)
	}
	if b, _ := w.st.Balance(ref); b != 50 {
		t.Fatalf("referrer balance %d: the first payment vests the referral", b)
	}
}

func TestStarsForgeryGrantsNothing(t *testing.T) {
	w := newWorld(t)
	uid, tg := w.user("")
	other, otherTG := w.user("")
	inv, payload := w.starsInvoice(uid, Product{Kind: KindCredits, Qty: 100})
	forged := inv.PaymentID + ".AAAAAAAAAAAAAAAAAAAAAA"
	// A payload for a record that does not exist, signed by another key.
	w2 := &Service{payloadKey: []byte("another node's key")}
	unknown := w2.Payload(Stars, w.id())
	cases := []struct {
		name    string
		from    int64
		amount  int64
		payload string
	}{
		{"bad tag", tg, 100, forged},
		{"foreign signer", tg, 100, unknown},
		{"garbage", tg, 100, "give me credits"},
		{"other user", otherTG, 100, payload},
		{"under-paid", tg, 1, payload},
		{"qvapay payload", tg, 100, w.svc.Payload(QvaPay, inv.PaymentID)},
	}
	for i, c := range cases {
		q := fmt.Sprintf("q%d", i)
		if err := w.svc.HandleUpdate(ctx(), w.update(preCheckoutUpdate(q, c.from, c.amount, c.payload))); err != nil {
			t.Fatal(err)
		}
		if ok, seen := w.bot.answer(q); ok || !seen {
			t.Errorf("%s: pre-checkout ok=%v seen=%v", c.name, ok, seen)
		}
		if err := w.svc.HandleUpdate(ctx(), w.update(paidUpdate(c.from, c.amount, c.payload, "ch-"+q))); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []string{uid, other} {
		if b, _ := w.st.Balance(u); b != 0 {
			t.Fatalf("user %s got %d credits", u, b)
		}
	}
	if p := w.payment(inv.PaymentID); p.Status != model.PayPending {
		t.Fatalf("payment %s", p.Status)
	}
	if n := w.allAudits(store.RejectPayment{}.Kind()); n != 2*len(cases) {
		t.Fatalf("%d rejections audited, want %d", n, 2*len(cases))
	}
	if n := len(w.bot.sent(adminChat)); n != len(cases) {
		t.Fatalf("%d admin alerts for %d unexplained charges", n, len(cases))
	}
	// The genuine payment still goes through afterwards.
	if err := w.svc.HandleUpdate(ctx(), w.update(paidUpdate(tg, 100, payload, "real"))); err != nil {
		t.Fatal(err)
	}
	if b, _ := w.st.Balance(uid); b != 100 {
		t.Fatalf("balance %d after the genuine payment", b)
	}
}

func TestStarsPreCheckoutRevalidates(t *testing.T) {
	w := newWorld(t)
	uid, tg := w.user("")
	inv, payload := w.starsInvoice(uid, Product{Kind: KindPlan, RefID: w.plan.ID, Months: 1})
	// The price changed since the invoice: refused.
	w.do(store.PutPlan{Plan: model.Plan{ID: w.plan.ID, Name: "basic", DurationDays: 30, MaxKeys: 2,
		Protocols: w.plan.Protocols, PriceStars: 150, PriceUSDCents: 399, Active: true}})
	w.svc.HandleUpdate(ctx(), w.update(preCheckoutUpdate("q", tg, inv.Amount, payload)))
	if ok, _ := w.bot.answer("q"); ok {
		t.Fatal("pre-checkout accepted at a stale price")
	}
	// Expired invoice: refused.
	w.do(store.PutPlan{Plan: *w.plan})
	w.do(store.ExpirePayment{PaymentID: inv.PaymentID})
	w.svc.HandleUpdate(ctx(), w.update(preCheckoutUpdate("q2", tg, inv.Amount, payload)))
	if ok, _ := w.bot.answer("q2"); ok {
		t.Fatal("pre-checkout accepted for an expired invoice")
	}
}

func TestStarsRefundsReverseExactly(t *testing.T) {
	w := newWorld(t)
	ref, _ := w.user("")
	uid, tg := w.user(ref)
	planPay, planCharge := w.buyStars(uid, tg, Product{Kind: KindPlan, RefID: w.plan.ID, Months: 1})
	credPay, _ := w.buyStars(uid, tg, Product{Kind: KindCredits, Qty: 100})
	w.do(store.AddCredits{Entry: model.CreditEntry{ID: w.id(), UserID: uid, Amount: -80, Reason: "spent", IdempotencyKey: "s1"}})
	if b, _ := w.st.Balance(ref); b != 50 {
		t.Fatalf("referrer %d", b)
	}
	// Telegram tells us of a refund (a chargeback by support).
	refunded := w.update(refundedUpdate(tg, 100, w.payment(planPay).Payload, planCharge))
	for range 2 {
		if err := w.svc.HandleUpdate(ctx(), refunded); err != nil {
			t.Fatal(err)
		}
	}
	if subs := w.subs(uid); len(subs) != 1 || subs[0].Status != model.SubCancelled {
		t.Fatalf("subscription after refund: %+v", subs)
	}
	if b, _ := w.st.Balance(ref); b != 0 {
		t.Fatalf("referrer keeps %d after the vesting payment was refunded", b)
	}
	// An admin refund of the credits: Telegram refunds, the balance goes negative.
	if err := w.svc.RefundStars(ctx(), "admin:root", credPay); err != nil {
		t.Fatal(err)
	}
	if b, _ := w.st.Balance(uid); b != -80 {
		t.Fatalf("balance %d, want -80", b)
	}
	if len(w.bot.refunds) != 1 {
		t.Fatalf("refundStarPayment calls %v", w.bot.refunds)
	}
	// Telegram's refunded_payment for the admin refund changes nothing more.
	if err := w.svc.HandleUpdate(ctx(), w.update(refundedUpdate(tg, 100, w.payment(credPay).Payload, w.payment(credPay).ProviderChargeID))); err != nil {
		t.Fatal(err)
	}
	if b, _ := w.st.Balance(uid); b != -80 {
		t.Fatalf("balance %d after the duplicate refund notice", b)
	}
	// Two refunds: the user is blocked, and the decision is audited.
	u, _ := w.st.User(uid)
	if !u.Banned || !strings.Contains(u.BanReason, "refunds") {
		t.Fatalf("user after two refunds: banned=%v %q", u.Banned, u.BanReason)
	}
	if _, err := w.svc.Buy(ctx(), "test", uid, Product{Kind: KindCredits, Qty: 100}, Stars); !errors.Is(err, model.ErrBanned) {
		t.Fatalf("a blocked user buys: %v", err)
	}
}

func TestReconcileFindsMissedPayments(t *testing.T) {
	w := newWorld(t)
	uid, tg := w.user("")
	inv, payload := w.starsInvoice(uid, Product{Kind: KindSlots, Qty: 2})
	other, otherPayload := w.starsInvoice(uid, Product{Kind: KindCredits, Qty: 100})
	// Paid while the node was down: the updates were never seen.
	w.bot.charge(tg, inv.Amount, payload, "missed-1")
	w.bot.charge(tg, other.Amount, otherPayload, "missed-2")
	w.bot.charge(tg, 5, "forged.payload", "junk")
	res, err := w.svc.ReconcileStars(ctx())
	if err != nil {
		t.Fatal(err)
	}
	if res.Settled != 2 || res.Seen != 3 {
		t.Fatalf("reconcile %+v", res)
	}
	if u, _ := w.st.User(uid); u.ExtraSlots != 2 {
		t.Fatalf("slots %d", u.ExtraSlots)
	}
	// Again: nothing new; the late update itself changes nothing either.
	if res, err = w.svc.ReconcileStars(ctx()); err != nil || res.Settled != 0 {
		t.Fatalf("second reconcile %+v %v", res, err)
	}
	w.svc.HandleUpdate(ctx(), w.update(paidUpdate(tg, inv.Amount, payload, "missed-1")))
	if u, _ := w.st.User(uid); u.ExtraSlots != 2 {
		t.Fatalf("slots %d after the late update", u.ExtraSlots)
	}
	if got := w.bot.sent(tg); len(got) != 2 {
		t.Fatalf("receipts %q", got)
	}
	// A refund made elsewhere (by support) is found too.
	w.bot.mu.Lock()
	w.bot.txs = append(w.bot.txs, StarTransaction{ID: "missed-1", Receiver: &TransactionPartner{Type: "user", User: &User{ID: tg}}})
	w.bot.mu.Unlock()
	if res, err = w.svc.ReconcileStars(ctx()); err != nil || res.Refunded != 1 {
		t.Fatalf("refund reconcile %+v %v", res, err)
	}
	if u, _ := w.st.User(uid); u.ExtraSlots != 0 {
		t.Fatalf("slots %d after refund", u.ExtraSlots)
	}
}

func TestAntiFraudRules(t *testing.T) {
	w := newWorld(t)
	uid, tg := w.user("")
	// A trial-like (7-day) plan only after a first paid purchase.
	_, err := w.svc.SendStarsInvoice(ctx(), "test", uid, Product{Kind: KindPlan, RefID: w.short.ID, Months: 1})
	if !errors.Is(err, ErrFirstPurchase) {
		t.Fatalf("trial-like before a purchase: %v", err)
	}
	w.buyStars(uid, tg, Product{Kind: KindCredits, Qty: 100})
	if _, err := w.svc.SendStarsInvoice(ctx(), "test", uid, Product{Kind: KindPlan, RefID: w.short.ID, Months: 1}); err != nil {
		t.Fatalf("trial-like after a purchase: %v", err)
	}
	// At most three open invoices; they stop counting once stale.
	w.starsInvoice(uid, Product{Kind: KindCredits, Qty: 100})
	w.starsInvoice(uid, Product{Kind: KindCredits, Qty: 500})
	if _, err := w.svc.Buy(ctx(), "test", uid, Product{Kind: KindSlots, Qty: 1}, Stars); !errors.Is(err, ErrOpenInvoices) {
		t.Fatalf("fourth open invoice: %v", err)
	}
	if n := w.audits(uid, store.RejectPayment{}.Kind()); n != 2 {
		t.Fatalf("%d anti-fraud decisions audited", n)
	}
	w.clock.Add(61 * time.Minute)
	if n, err := w.svc.ExpireStars(ctx()); err != nil || n != 3 {
		t.Fatalf("expired %d %v", n, err)
	}
	if _, err := w.svc.Buy(ctx(), "test", uid, Product{Kind: KindSlots, Qty: 1}, Stars); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
}
