package pay

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

func TestLedgerCheckAndRevenue(t *testing.T) {
	w := newWorld(t)
	uid, tg := w.user("")
	w.buyStars(uid, tg, Product{Kind: KindCredits, Qty: 100})
	w.buyStars(uid, tg, Product{Kind: KindPlan, RefID: w.plan.ID, Months: 1})
	refunded, _ := w.buyStars(uid, tg, Product{Kind: KindCredits, Qty: 500})
	if err := w.svc.RefundStars(ctx(), "admin:root", refunded); err != nil {
		t.Fatal(err)
	}
	if bad, err := w.svc.CheckLedger(ctx()); err != nil || len(bad) != 0 {
		t.Fatalf("consistent ledger flagged: %v %v", bad, err)
	}
	rev, err := w.svc.Revenue(ctx(), w.clock.Now().Add(-time.Hour), w.clock.Now().Add(time.Hour))
	if err != nil || rev[w.clock.Now().Format(time.DateOnly)][XTR] != 200 {
		t.Fatalf("revenue %v %v", rev, err)
	}
	// Injected: a ledger entry that claims a purchase nobody paid.
	pending, _ := w.starsInvoice(uid, Product{Kind: KindCredits, Qty: 100})
	w.do(store.AddCredits{Entry: model.CreditEntry{ID: w.id(), UserID: uid, Amount: 100, Reason: "purchase",
		IdempotencyKey: "payment:" + pending.PaymentID}})
	bad, err := w.svc.CheckLedger(ctx())
	if err != nil || len(bad) != 1 || bad[0].UserID != uid {
		t.Fatalf("injected inconsistency: %+v %v", bad, err)
	}
	if got := w.bot.sent(adminChat); !strings.Contains(got[len(got)-1], "Ledger check") {
		t.Fatalf("admins not alerted: %q", got[len(got)-1])
	}
}

func TestRunJobsAndManualRefund(t *testing.T) {
	w := newWorld(t)
	uid, tg := w.user("")
	inv, payload := w.starsInvoice(uid, Product{Kind: KindCredits, Qty: 100})
	w.bot.charge(tg, inv.Amount, payload, "while-down")
	c, cancel := context.WithCancel(ctx())
	done := make(chan struct{})
	go func() { defer close(done); w.svc.RunJobs(c, Schedule{}) }()
	waitFor(t, "reconciled at start", func() bool { b, _ := w.st.Balance(uid); return b == 100 })
	cancel()
	<-done
	if err := w.svc.RecordRefund(ctx(), "admin:root", inv.PaymentID, "manual-1"); err != nil {
		t.Fatal(err)
	}
	if err := w.svc.RecordRefund(ctx(), "admin:root", inv.PaymentID, "manual-1"); err != nil {
		t.Fatalf("repeated: %v", err)
	}
	if b, _ := w.st.Balance(uid); b != 0 {
		t.Fatalf("balance %d", b)
	}
}
