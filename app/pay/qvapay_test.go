package pay

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

func (w *world) callback(app *fiber.App, query string) int {
	w.t.Helper()
	resp, err := app.Test(httptest.NewRequest("GET", "/qvapay/callback?"+query, nil), 5000)
	if err != nil {
		w.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func TestQvaPayCallbackNeverTrusted(t *testing.T) {
	w := newWorld(t)
	uid, tg := w.user("")
	app := fiber.New()
	app.Get("/qvapay/callback", w.svc.QvaPayCallback())

	inv, err := w.svc.Buy(ctx(), "test", uid, Product{Kind: KindPlan, RefID: w.plan.ID, Months: 1}, QvaPay)
	if err != nil {
		t.Fatal(err)
	}
	p := w.payment(inv.PaymentID)
	if inv.Amount != 299 || inv.Currency != USD || !strings.HasPrefix(inv.URL, "https://qvapay.com/pay/") || p.Payload == "" {
		t.Fatalf("invoice %+v payload %q", inv, p.Payload)
	}
	uuid := p.Payload
	// Unknown transaction; unpaid; another app's; under-paid; a different
	// remote id than the transaction's; a malformed id.
	w.callback(app, "id=00000000-dead-beef-0000-000000000000&remote_id="+inv.PaymentID)
	w.callback(app, "id="+uuid+"&remote_id="+inv.PaymentID)
	w.qva.set("other-app-tx-0001", map[string]any{"app_id": "app-9999", "amount": "2.99", "remote_id": inv.PaymentID, "status": "paid"})
	w.callback(app, "id=other-app-tx-0001&remote_id="+inv.PaymentID)
	w.qva.set(uuid, map[string]any{"status": "paid", "amount": "2.98"})
	w.callback(app, "id="+uuid+"&remote_id="+inv.PaymentID)
	w.qva.set(uuid, map[string]any{"amount": "2.99"})
	w.callback(app, "id="+uuid+"&remote_id="+w.id())
	w.callback(app, "id=../../etc&remote_id="+inv.PaymentID)
	if len(w.subs(uid)) != 0 || w.payment(inv.PaymentID).Status != model.PayPending {
		t.Fatal("granted on an untrusted callback")
	}
	if n := w.allAudits(store.RejectPayment{}.Kind()); n != 6 {
		t.Fatalf("%d rejections audited, want 6", n)
	}
	// The genuine callback, twice: one grant, one receipt.
	for range 2 {
		if code := w.callback(app, "id="+uuid+"&remote_id="+inv.PaymentID); code != 200 {
			t.Fatalf("callback %d", code)
		}
	}
	if subs := w.subs(uid); len(subs) != 1 {
		t.Fatalf("subs %d", len(subs))
	}
	if got := w.bot.sent(tg); len(got) != 1 || !strings.Contains(got[0], "2.99 USD") {
		t.Fatalf("receipts %q", got)
	}
	// The credentials are sealed at rest: the setting holds no clear secret.
	st, _ := w.st.Setting(settingQvaPay)
	if strings.Contains(string(st.Value), w.qva.appSc) || strings.Contains(string(st.Value), w.qva.appID) {
		t.Fatal("qvapay credentials stored in clear")
	}
}

func TestQvaPaySweep(t *testing.T) {
	w := newWorld(t)
	uid, _ := w.user("")
	paid, err := w.svc.Buy(ctx(), "test", uid, Product{Kind: KindCredits, Qty: 100}, QvaPay)
	if err != nil {
		t.Fatal(err)
	}
	stale, err := w.svc.Buy(ctx(), "test", uid, Product{Kind: KindCredits, Qty: 500}, QvaPay)
	if err != nil {
		t.Fatal(err)
	}
	w.qva.set(w.payment(paid.PaymentID).Payload, map[string]any{"status": "paid"})
	res, err := w.svc.SweepQvaPay(ctx())
	if err != nil || res.Settled != 1 || res.Expired != 0 || res.Checked != 2 {
		t.Fatalf("sweep %+v %v", res, err)
	}
	if b, _ := w.st.Balance(uid); b != 100 {
		t.Fatalf("balance %d", b)
	}
	w.clock.Add(2 * time.Hour)
	if res, err = w.svc.SweepQvaPay(ctx()); err != nil || res.Expired != 1 || res.Settled != 0 {
		t.Fatalf("sweep %+v %v", res, err)
	}
	if p := w.payment(stale.PaymentID); p.Status != model.PayExpired {
		t.Fatalf("stale invoice %s", p.Status)
	}
	// Paid late: the next sweep still settles it.
	w.qva.set(w.payment(stale.PaymentID).Payload, map[string]any{"status": "paid"})
	if res, err = w.svc.SweepQvaPay(ctx()); err != nil || res.Settled != 1 {
		t.Fatalf("late sweep %+v %v", res, err)
	}
	if b, _ := w.st.Balance(uid); b != 600 {
		t.Fatalf("balance %d", b)
	}
}

func TestSecretsNotInErrors(t *testing.T) {
	w := newWorld(t)
	// An unreachable Bot API and QvaPay: errors must not carry the token or the secret.
	svc, err := New(Options{Store: w.st, DataKey: w.dk, BotToken: w.bot.token, BotAPIURL: "http://127.0.0.1:1", QvaPayURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := w.user("")
	_, err1 := svc.Buy(ctx(), "test", uid, Product{Kind: KindCredits, Qty: 100}, Stars)
	_, err2 := svc.Buy(ctx(), "test", uid, Product{Kind: KindCredits, Qty: 100}, QvaPay)
	for _, e := range []error{err1, err2} {
		if e == nil || strings.Contains(e.Error(), w.bot.token) || strings.Contains(e.Error(), w.qva.appSc) {
			t.Fatalf("error %v", e)
		}
	}
}

func newFiber() *fiber.App { return fiber.New() }

func post(t *testing.T, app *fiber.App, path, body, secret string) int {
	t.Helper()
	req := httptest.NewRequest("POST", path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Telegram-Bot-Api-Secret-Token", secret)
	resp, err := app.Test(req, 5000)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode
}
