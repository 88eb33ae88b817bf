package pay

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"
)

func scrapeFailures(t *testing.T, set *metrics.Set) map[string]string {
	t.Helper()
	var b bytes.Buffer
	set.WritePrometheus(&b)
	got := map[string]string{}
	for _, line := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(line, "usipipo_payment_failures_total{") {
			name, val, _ := strings.Cut(line, " ")
			got[name] = val
		}
	}
	return got
}

func TestPaymentFailuresCounted(t *testing.T) {
	w := newWorld(t)
	set := metrics.NewSet()
	w.svc.RegisterMetrics(set)
	first := scrapeFailures(t, set)
	if len(first) != len(failProviders)*len(failReasons) {
		t.Fatalf("first scrape has %d failure series, want every pair: %v", len(first), first)
	}
	for name, v := range first {
		if v != "0" {
			t.Fatalf("%s = %s before any failure", name, v)
		}
	}

	// A forged Stars payment: refused at pre-checkout and at payment.
	uid, tg := w.user("")
	inv, _ := w.starsInvoice(uid, Product{Kind: KindCredits, Qty: 100})
	forged := inv.PaymentID + ".AAAAAAAAAAAAAAAAAAAAAA"
	if err := w.svc.HandleUpdate(ctx(), w.update(preCheckoutUpdate("q1", tg, 100, forged))); err != nil {
		t.Fatal(err)
	}
	if err := w.svc.HandleUpdate(ctx(), w.update(paidUpdate(tg, 100, forged, "ch-1"))); err != nil {
		t.Fatal(err)
	}
	if n := w.svc.Failures(Stars, FailRejected); n != 2 {
		t.Fatalf("stars rejected = %d, want 2", n)
	}
	// The genuine payment is not a failure.
	_, payload := w.starsInvoice(uid, Product{Kind: KindCredits, Qty: 100})
	if err := w.svc.HandleUpdate(ctx(), w.update(paidUpdate(tg, 100, payload, "ch-2"))); err != nil {
		t.Fatal(err)
	}
	if n := w.svc.Failures(Stars, FailRejected); n != 2 {
		t.Fatalf("stars rejected = %d after a genuine payment, want 2", n)
	}

	// An unknown QvaPay transaction is a rejection, not a failed call.
	if ok, err := w.svc.ConfirmQvaPay(ctx(), "00000000-dead-beef-0000-000000000000", ""); ok || err != nil {
		t.Fatalf("unknown transaction: ok=%v err=%v", ok, err)
	}
	if r, e := w.svc.Failures(QvaPay, FailRejected), w.svc.Failures(QvaPay, FailProviderError); r != 1 || e != 0 {
		t.Fatalf("qvapay rejected=%d provider_error=%d, want 1 and 0", r, e)
	}
	// QvaPay refusing our credentials is a provider error.
	if err := w.svc.SetQvaPayCredentials(ctx(), "test", w.qva.appID, "wrong-secret"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.Buy(ctx(), "test", uid, Product{Kind: KindPlan, RefID: w.plan.ID, Months: 1}, QvaPay); err == nil {
		t.Fatal("an invoice with refused credentials")
	}
	if n := w.svc.Failures(QvaPay, FailProviderError); n != 1 {
		t.Fatalf("qvapay provider_error = %d, want 1", n)
	}

	got := scrapeFailures(t, set)
	for _, c := range []struct {
		provider, reason, want string
	}{{Stars, FailRejected, "2"}, {QvaPay, FailRejected, "1"}, {QvaPay, FailProviderError, "1"}, {Stars, FailFraud, "0"}} {
		name := fmt.Sprintf(`usipipo_payment_failures_total{provider=%q,reason=%q}`, c.provider, c.reason)
		if got[name] != c.want {
			t.Errorf("%s = %q, want %s", name, got[name], c.want)
		}
	}
}
