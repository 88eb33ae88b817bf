package pay

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

func scrape(t *testing.T, set *metrics.Set) map[string]string {
	t.Helper()
	var b bytes.Buffer
	set.WritePrometheus(&b)
	out := map[string]string{}
	for _, line := range strings.Split(b.String(), "\n") {
		if name, val, ok := strings.Cut(line, " "); ok && !strings.HasPrefix(line, "#") {
			out[name] = val
		}
	}
	return out
}

// Revenue gauges follow settlements and refunds, per currency, today and in
// total, and a scrape reads cached figures instead of scanning payments.
func TestRevenueMetrics(t *testing.T) {
	w := newWorld(t)
	set := metrics.NewSet()
	w.svc.RegisterMetrics(set)
	w.svc.RegisterMetrics(set) // a restarted part registers again: no panic
	m := scrape(t, set)
	if m[`usipipo_revenue_today{currency="XTR"}`] != "0" || m[`usipipo_revenue_total{currency="USD"}`] != "0" {
		t.Fatalf("empty node: %v", m)
	}
	uid, tg := w.user("")
	pay1, _ := w.buyStars(uid, tg, Product{Kind: KindCredits, Qty: 100})
	w.buyStars(uid, tg, Product{Kind: KindSlots, Qty: 1})
	if m = scrape(t, set); m[`usipipo_revenue_today{currency="XTR"}`] != "0" {
		t.Fatalf("recomputed sooner than revenueMinAge: %v", m)
	}
	w.clock.Add(revenueMinAge)
	m = scrape(t, set)
	if m[`usipipo_revenue_today{currency="XTR"}`] != "150" || m[`usipipo_revenue_total{currency="XTR"}`] != "150" {
		t.Fatalf("after 100+50 Stars: %v", m)
	}

	// A payment recorded behind the service's back (another node, a bulk
	// import) does not show until the cache ages out: scrapes do not scan.
	other := model.Payment{ID: w.id(), UserID: uid, Provider: QvaPay, Amount: 499, Currency: USD, Product: Product{Kind: KindSlots, Qty: 1}}
	w.do(store.CreatePayment{Payment: other})
	w.do(store.SettlePayment{PaymentID: other.ID, ChargeID: "qva-x", Amount: 499, Currency: USD})
	if m = scrape(t, set); m[`usipipo_revenue_today{currency="USD"}`] != "0" {
		t.Fatalf("a scrape rescanned payments: %v", m)
	}
	w.clock.Add(revenueMaxAge)
	if m = scrape(t, set); m[`usipipo_revenue_today{currency="USD"}`] != "4.99" {
		t.Fatalf("after the cache aged: %v", m)
	}

	// A refund takes its payment off (after the minimum age).
	if err := w.svc.RefundStars(ctx(), "test", pay1); err != nil {
		t.Fatal(err)
	}
	w.clock.Add(revenueMinAge)
	if m = scrape(t, set); m[`usipipo_revenue_today{currency="XTR"}`] != "50" {
		t.Fatalf("after refunding 100: %v", m)
	}
	// The next UTC day starts at zero; the total keeps the past.
	w.clock.Add(24 * time.Hour)
	m = scrape(t, set)
	if m[`usipipo_revenue_today{currency="XTR"}`] != "0" || m[`usipipo_revenue_total{currency="XTR"}`] != "50" ||
		m[`usipipo_revenue_total{currency="USD"}`] != "4.99" {
		t.Fatalf("next day: %v", m)
	}
}
