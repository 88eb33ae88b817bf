package bot

import (
	"fmt"
	"strings"
	"testing"

	"github.com/usipipo/usipipo/app/bot/bottest"
	"github.com/usipipo/usipipo/app/pay"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// /start → plan → months → protocol → Stars invoice → pre-checkout →
// successful payment → the key is delivered at once, once.
func TestPurchaseWithStars(t *testing.T) {
	w := newWorld(t)
	plan := w.putPlan("Basic", 100, 299, model.WireGuard, model.Outline)
	c := w.chat(4001, "en")
	c.send("/start")
	evs := c.press(c.send("/buy"), "Plans")
	mustContain(t, evs, "Available plans")
	if _, ok := menuOf(evs).FindButton("Basic · 100 ⭐ / $2.99"); !ok {
		t.Fatalf("the plan's price is not shown:\n%s", dump(evs))
	}
	evs = c.press(evs, "Basic")
	// Three months carry the catalogue's 10% discount, priced by app/pay.
	stars, cents, _ := w.pay.Price(pay.Product{Kind: pay.KindPlan, RefID: plan.ID, Months: 3})
	if _, ok := menuOf(evs).FindButton(fmt.Sprintf("3 month(s) · %d ⭐ / $%s", stars, usd(cents))); !ok || stars != 270 {
		t.Fatalf("3-month price:\n%s", dump(evs))
	}
	evs = c.press(evs, "1 month")
	evs = c.press(evs, "Outline")
	evs = c.press(evs, "Pay 100 ⭐")
	inv := find(evs, "sendInvoice")
	if inv == nil || inv.Params["currency"] != "XTR" || inv.Chat != 4001 {
		t.Fatalf("no Stars invoice:\n%s", dump(evs))
	}
	payload := inv.Params["payload"].(string)

	w.deliver(bottest.PreCheckout(c.u, "XTR", 100, payload))
	if ans := findLast(c.take(), "answerPreCheckoutQuery"); ans == nil || ans.Params["ok"] != true {
		t.Fatal("pre-checkout not approved")
	}
	w.deliver(bottest.Paid(c.u, "XTR", 100, payload, "charge-4001"))
	evs = c.take()
	mustContain(t, evs, "Payment received", "Plan Basic active until", "ss://")
	if find(evs, "sendPhoto") == nil {
		t.Fatalf("no QR code:\n%s", dump(evs))
	}
	u, _ := w.st.UserByTelegram(4001)
	ks, _, _ := w.st.Keys(store.KeyFilter{UserID: u.ID}, store.Page{Limit: 10})
	if len(ks) != 1 || ks[0].Type != model.Outline || ks[0].SubID == "" || ks[0].Trial {
		t.Fatalf("keys after purchase: %+v", ks)
	}
	// Telegram delivers the same update again: nothing more is granted or sent.
	w.deliver(bottest.Paid(c.u, "XTR", 100, payload, "charge-4001"))
	if evs := c.take(); len(evs) != 0 {
		t.Fatalf("a repeated payment delivered again:\n%s", dump(evs))
	}
	ks, _, _ = w.st.Keys(store.KeyFilter{UserID: u.ID}, store.Page{Limit: 10})
	if len(ks) != 1 {
		t.Fatalf("%d keys", len(ks))
	}
	// Within quota, a second key of the plan from /newkey.
	evs = c.press(c.send("/newkey"), "WireGuard")
	if find(evs, "sendDocument") == nil {
		t.Fatalf("new key:\n%s", dump(evs))
	}
	// Over quota: refused with the reason.
	mustContain(t, c.press(c.send("/newkey"), "WireGuard"), "key limit")
	mustContain(t, c.send("/profile"), "Plan: Basic", "Keys: 2")
}

// A payment settled outside the chat (a QvaPay callback, a reconciliation)
// is delivered by the watcher.
func TestWatcherDeliversSettledPayments(t *testing.T) {
	w := newWorld(t)
	w.putPlan("Pro", 200, 499, model.WireGuard)
	c := w.chat(4101, "es")
	c.send("/start")
	evs := c.press(c.press(c.press(c.press(c.send("/buy"), "Planes"), "Pro"), "1 mes"), "WireGuard")
	inv := find(c.press(evs, "Pagar 200 ⭐"), "sendInvoice")
	if inv == nil {
		t.Fatal("no invoice")
	}
	id, err := w.pay.ParsePayload(pay.Stars, inv.Params["payload"].(string))
	if err != nil {
		t.Fatal(err)
	}
	w.bot.deliverAwaited(ctx())
	if evs := c.take(); len(evs) != 0 {
		t.Fatalf("delivered before payment:\n%s", dump(evs))
	}
	// Settled the way a provider confirmation settles it.
	if err := w.st.Do(ctx(), store.Meta{At: w.now(), Actor: "test"}, store.SettlePayment{PaymentID: id, ChargeID: "ext-1",
		Amount: 200, Currency: "XTR", SubID: w.id(), EntryID: w.id(), VestID: w.id()}); err != nil {
		t.Fatal(err)
	}
	w.bot.deliverAwaited(ctx())
	evs = c.take()
	mustContain(t, evs, "Plan Pro activo")
	if find(evs, "sendDocument") == nil {
		t.Fatalf("no key delivered:\n%s", dump(evs))
	}
	w.bot.deliverAwaited(ctx())
	if evs := c.take(); len(evs) != 0 {
		t.Fatalf("delivered twice:\n%s", dump(evs))
	}
	if w.bot.loadAwait(id) != nil {
		t.Fatal("the await record stays")
	}
}

// Data packages, key slots and credits are priced from the catalogue and
// confirmed when paid.
func TestBuyOtherProducts(t *testing.T) {
	w := newWorld(t)
	c := w.chat(4201, "en")
	c.send("/start")
	evs := c.press(c.send("/buy"), "Credits")
	if _, ok := menuOf(evs).FindButton("Pay 100 ⭐"); !ok {
		t.Fatalf("credit packages:\n%s", dump(evs))
	}
	inv := find(c.press(evs, "Pay 100 ⭐"), "sendInvoice")
	payload := inv.Params["payload"].(string)
	w.deliver(bottest.PreCheckout(c.u, "XTR", 100, payload))
	w.deliver(bottest.Paid(c.u, "XTR", 100, payload, "charge-credits"))
	mustContain(t, c.take(), "100 credits added. Balance: 100.")

	evs = c.press(c.send("/buy"), "Slots")
	if _, ok := menuOf(evs).FindButton("Pay 100 ⭐"); !ok { // 2 slots × 50
		t.Fatalf("slots:\n%s", dump(evs))
	}
	// No capped key yet: no data package to buy.
	mustContain(t, c.press(c.send("/buy"), "Data"), "no keys with a data cap")
	c.press(c.send("/trial"), "Outline")
	evs = c.press(c.press(c.send("/buy"), "Data"), "outline")
	mustContain(t, evs, "Data packages")
	if _, ok := menuOf(evs).FindButton("Pay 75 ⭐"); !ok {
		t.Fatalf("data packages:\n%s", dump(evs))
	}
}

// QvaPay: the bot hands out the pay link; when QvaPay's callback is
// confirmed (re-queried, never trusted), the watcher delivers.
func TestPurchaseWithQvaPay(t *testing.T) {
	w := newWorld(t)
	c := w.chat(4301, "en")
	c.send("/start")
	evs := c.press(c.press(c.send("/buy"), "Credits"), "Pay $1.99 (QvaPay)")
	link, ok := menuOf(evs).FindButton("Open QvaPay")
	if !ok || !strings.HasPrefix(link.URL, w.qva.URL+"/pay/") {
		t.Fatalf("no pay link:\n%s", dump(evs))
	}
	u, _ := w.st.UserByTelegram(4301)
	ps, _, _ := w.st.Payments(u.ID, store.Page{Limit: 5})
	if len(ps) != 1 || ps[0].Provider != pay.QvaPay || ps[0].Amount != 199 {
		t.Fatalf("payments: %+v", ps)
	}
	// An unpaid invoice's callback grants nothing.
	uuid := strings.TrimPrefix(link.URL, w.qva.URL+"/pay/")
	if granted, err := w.pay.ConfirmQvaPay(ctx(), uuid, ps[0].ID); err != nil || granted {
		t.Fatalf("unpaid: %v %v", granted, err)
	}
	w.bot.deliverAwaited(ctx())
	if evs := c.take(); len(evs) != 0 {
		t.Fatalf("delivered unpaid:\n%s", dump(evs))
	}
	w.qva.Pay(ps[0].ID)
	if granted, err := w.pay.ConfirmQvaPay(ctx(), uuid, ps[0].ID); err != nil || !granted {
		t.Fatalf("paid: %v %v", granted, err)
	}
	w.bot.deliverAwaited(ctx())
	mustContain(t, c.take(), "100 credits added. Balance: 100.")
}
