package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/usipipo/usipipo/app/bot/bottest"
	"github.com/usipipo/usipipo/app/pay"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// /privacy exports everything as a JSON document and deletes the account
// after a confirmation.
func TestPrivacyExportAndDelete(t *testing.T) {
	w := newWorld(t)
	c := w.chat(5001, "en")
	c.send("/start")
	c.press(c.send("/trial"), "WireGuard")
	u, _ := w.st.UserByTelegram(5001)
	evs := c.press(c.send("/privacy"), "Download my data")
	doc := find(evs, "sendDocument")
	if doc == nil || !strings.HasSuffix(doc.File.Name, ".json") {
		t.Fatalf("no export:\n%s", dump(evs))
	}
	var exp map[string]json.RawMessage
	if err := json.Unmarshal(doc.File.Data, &exp); err != nil || !strings.Contains(string(exp["user"]), u.ID) || !strings.Contains(string(exp["keys"]), "wireguard") {
		t.Fatalf("export: %v %s", err, doc.File.Data)
	}
	if strings.Contains(string(doc.File.Data), "PrivateKey") {
		t.Fatal("the export carries a key's secret")
	}
	evs = c.press(c.send("/privacy"), "Delete my account")
	mustContain(t, evs, "cannot be undone")
	mustContain(t, c.press(evs, "Yes, delete"), "deleted")
	if got, _ := w.st.User(u.ID); !got.Erased {
		t.Fatal("the user was not erased")
	}
	// Talking to the bot again starts a new, empty account.
	evs = c.send("/profile")
	mustContain(t, evs, "no plan", "Keys: 0")
	if strings.Contains(texts(evs), u.ID) {
		t.Fatal("the erased account came back")
	}
}

// A ticket from the user, the admins' queue, a reply each way, and closing.
func TestSupportTickets(t *testing.T) {
	w := newWorld(t)
	c := w.chat(6001, "es")
	admin := w.chat(adminTG, "en")
	admin.send("/start")
	c.send("/start")
	mustContain(t, c.send("/support"), "asunto")
	mustContain(t, c.send("No conecta"), "describe")
	evs := c.send("WireGuard no conecta desde ayer")
	mustContain(t, evs, "abierto")
	notice := admin.take()
	mustContain(t, notice, "New ticket", "No conecta")

	evs = admin.press(admin.send("/queue"), "No conecta")
	mustContain(t, evs, "WireGuard no conecta desde ayer")
	mustContain(t, admin.press(evs, "Reply"), "Send your reply")
	admin.send("Prueba a rotar la clave")
	got := c.take()
	mustContain(t, got, "Soporte respondió", "Prueba a rotar la clave")

	// The user answers from the button they got, then closes.
	evs = c.press(got, "Ver")
	mustContain(t, evs, "Soporte ·")
	c.press(evs, "Responder")
	mustContain(t, c.send("Funciona, gracias"), "Respuesta enviada")
	mustContain(t, admin.take(), "Funciona, gracias")
	mustContain(t, c.press(c.press(c.send("/tickets"), "No conecta"), "Cerrar"), "cerrado")
	u, _ := w.st.UserByTelegram(6001)
	ts, _, _ := w.app.Tickets(ctx(), model.TicketClosed, u.ID, store.Page{Limit: 5})
	if len(ts) != 1 || len(ts[0].Messages) != 3 {
		t.Fatalf("tickets: %+v", ts)
	}
	// Another user cannot open it.
	other := w.chat(6002, "es")
	other.send("/start")
	w.deliver(bottest.Press(other.u, 1, w.bot.cbData(other.u.ID, "sup.view", ts[0].ID)))
	mustContain(t, other.take(), "No se encontró")
}

// Admin commands work for admins only: status, find, ban/unban, plan, role,
// credits, audit, refund.
func TestAdminFlows(t *testing.T) {
	w := newWorld(t)
	plan := w.putPlan("Basic", 100, 299, model.WireGuard)
	admin := w.chat(adminTG, "en")
	admin.send("/start")
	c := w.chat(7001, "en")
	c.send("/start")
	u, _ := w.st.UserByTelegram(7001)

	mustContain(t, c.send("/status"), "Unknown command")
	mustContain(t, admin.send("/status"), "Users: 2")
	evs := admin.send("/find 7001")
	mustContain(t, evs, u.ID, "Role: user")
	mustContain(t, admin.send("/ban 7001 spam"), "banned")
	mustContain(t, c.send("/keys"), "account is blocked")
	mustContain(t, admin.send("/unban "+u.ReferralCode), "unbanned")
	mustContain(t, admin.send("/grant 7001 basic 2"), "Plan Basic granted")
	if _, p, err := w.st.CurrentPlan(u.ID, w.now()); err != nil || p.ID != plan.ID {
		t.Fatalf("plan: %v", err)
	}
	mustContain(t, admin.send("/grant 7001 basic"), "Usage: /grant")
	mustContain(t, admin.send("/credits 7001 40"), "Balance: 40")
	mustContain(t, admin.send("/role 7001 admin 7"), "is now admin")
	mustContain(t, c.send("/status"), "Users: 2") // the granted role works
	mustContain(t, admin.send("/role 7001 user"), "is now user")
	mustContain(t, c.send("/status"), "Unknown command")
	mustContain(t, admin.send("/audit 7001"), "user.role/1", "credits.add/1", "user.ban/1")

	// A Stars purchase, refunded from the bot.
	evs = c.press(c.press(c.press(c.press(c.send("/buy"), "Plans"), "Basic"), "1 month"), "WireGuard")
	inv := find(c.press(evs, "Pay 100 ⭐"), "sendInvoice")
	payload := inv.Params["payload"].(string)
	w.deliver(bottest.PreCheckout(c.u, "XTR", 100, payload))
	w.deliver(bottest.Paid(c.u, "XTR", 100, payload, "charge-7001"))
	id, _ := w.pay.ParsePayload(pay.Stars, payload)
	evs = admin.press(admin.send("/find 7001"), "Payments")
	mustContain(t, evs, id, "paid")
	evs = admin.press(evs, "Refund")
	mustContain(t, evs, "Refund payment")
	mustContain(t, admin.press(evs, "Yes, refund"), "refunded")
	if p, _ := w.st.Payment(id); p.Status != model.PayRefunded {
		t.Fatalf("payment %s", p.Status)
	}
	if _, err := w.api.WaitFor(0, 0, func(e bottest.Event) bool {
		return e.Method == "refundStarPayment" && e.Params["telegram_payment_charge_id"] == "charge-7001"
	}); err != nil {
		t.Fatal("refundStarPayment was not called")
	}
	// Refunding again is harmless (Telegram answers CHARGE_ALREADY_REFUNDED).
	mustContain(t, admin.send("/refund "+id), "refunded")
	mustContain(t, admin.send("/refund "+w.id()), "Not found")
	mustContain(t, admin.send("/refund nonsense"), "Usage: /refund")
}

// A failing handler never stops the bot: the user gets an apology with a
// reference, the admins the detail under the same reference, and the
// update is done (not retried into duplicate replies).
func TestHandlerErrorsAndPanics(t *testing.T) {
	w := newWorld(t)
	admin := w.chat(adminTG, "en")
	admin.send("/start")
	c := w.chat(8001, "en")
	c.send("/start")
	w.bot.commands["/boom"] = func(r *req) error { return errors.New("disk on fire") }
	w.bot.commands["/panic"] = func(r *req) error { panic("nil map") }
	for _, cmd := range []string{"/boom", "/panic"} {
		evs := c.send(cmd)
		m := regexp.MustCompile(`Reference: ([0-9a-f]{8})`).FindStringSubmatch(texts(evs))
		if m == nil {
			t.Fatalf("%s: no apology:\n%s", cmd, dump(evs))
		}
		if strings.Contains(texts(evs), "fire") || strings.Contains(texts(evs), "nil map") {
			t.Fatal("the user sees the internal error")
		}
		mustContain(t, admin.take(), "Bot error "+m[1], fmt.Sprint(c.u.ID))
	}
	mustContain(t, c.send("/help"), "Commands")
}

// One user flooding the bot is slowed down (told once) while others are
// served.
func TestRateLimit(t *testing.T) {
	w := newWorld(t)
	b, err := New(Options{App: w.app, Pay: w.pay, Token: testToken, APIURL: w.api.URL, SignKey: w.signKey, Rate: 0.001, Burst: 5})
	if err != nil {
		t.Fatal(err)
	}
	w.pay.SetHandler(b)
	w.handler = b.AfterPayments(w.pay)
	c, other := w.chat(9001, "en"), w.chat(9002, "en")
	var evs []bottest.Event
	for range 20 {
		evs = append(evs, c.send("/help")...)
	}
	if n := strings.Count(texts(evs), "Commands"); n != 5 {
		t.Fatalf("%d answers to 20 messages with a burst of 5", n)
	}
	if n := strings.Count(texts(evs), "too fast"); n != 1 {
		t.Fatalf("told to slow down %d times", n)
	}
	mustContain(t, other.send("/help"), "Commands")
}

// /proxies says so when the node keeps no free proxy list; /broadcast
// queues with the notifier for admins only.
func TestFreeProxiesOffAndBroadcast(t *testing.T) {
	w := newWorld(t)
	type call struct {
		actor, lang string
		active      bool
		text        string
	}
	var got []call
	w.bot.bcast = func(_ context.Context, actor, lang string, active bool, text string) (string, error) {
		got = append(got, call{actor, lang, active, text})
		return "bc1", nil
	}
	c := w.chat(9101, "en")
	mustContain(t, c.send("/proxies"), "not enabled")
	mustContain(t, c.send("/broadcast all hi"), "Unknown command")
	admin := w.chat(adminTG, "en")
	mustContain(t, admin.send("/broadcast es Mantenimiento a las 3"), "Broadcast bc1 queued")
	mustContain(t, admin.send("/broadcast everyone hi"), "Usage: /broadcast")
	if len(got) != 1 || got[0] != (call{fmt.Sprintf("bot:%d", adminTG), "es", false, "Mantenimiento a las 3"}) {
		t.Fatalf("broadcasts: %+v", got)
	}
}

// A banned user still reads the help, changes language and gets or
// deletes their data; everything else is refused.
func TestBannedUserKeepsPrivacyRights(t *testing.T) {
	w := newWorld(t)
	c := w.chat(9201, "en")
	c.send("/start")
	u, _ := w.st.UserByTelegram(9201)
	if err := w.app.Ban(ctx(), "test", u.ID, "abuse"); err != nil {
		t.Fatal(err)
	}
	mustContain(t, c.send("/trial"), "account is blocked")
	mustContain(t, c.press(c.send("/lang"), "Español"), "Idioma cambiado")
	if find(c.press(c.send("/privacy"), "Descargar"), "sendDocument") == nil {
		t.Fatal("a banned user cannot export their data")
	}
	mustContain(t, c.press(c.send("/help"), "Volver"), "bloqueada")
}

// /proxy offers the MTProto trial, then hands out its tg://proxy link and
// QR; a plan that includes MTProto issues one within its quota.
func TestMTProtoProxy(t *testing.T) {
	w := newWorld(t)
	c := w.chat(9301, "en")
	c.send("/start")
	evs := c.press(c.send("/proxy"), "Free trial")
	mustContain(t, evs, "tg://proxy?port=443&secret=ee", "server=vpn.example.net")
	if b, ok := menuOf(evs).FindButton("Connect"); !ok || !strings.HasPrefix(b.URL, "https://t.me/proxy?") {
		t.Fatalf("no t.me button:\n%s", dump(evs))
	}
	if find(evs, "sendPhoto") == nil {
		t.Fatalf("no QR:\n%s", dump(evs))
	}
	// Asking again sends the same link.
	mustContain(t, c.send("/proxy"), "tg://proxy")
	// One MTProto secret per user: with the trial's active, the plan's is
	// refused; another user with the plan gets theirs.
	plan := w.putPlan("Tg", 50, 99, model.MTProto)
	u, _ := w.st.UserByTelegram(9301)
	if _, err := w.app.GrantPlan(ctx(), "test", u.ID, plan.ID, 1, 0); err != nil {
		t.Fatal(err)
	}
	mustContain(t, c.press(c.send("/newkey"), "MTProto"), "key limit")
	d := w.chat(9302, "en")
	d.send("/start")
	u2, _ := w.st.UserByTelegram(9302)
	if _, err := w.app.GrantPlan(ctx(), "test", u2.ID, plan.ID, 1, 0); err != nil {
		t.Fatal(err)
	}
	mustContain(t, d.press(d.send("/newkey"), "MTProto"), "tg://proxy")
	ps, _, _ := w.st.Proxies(u2.ID, store.Page{Limit: 5})
	if len(ps) != 1 || ps[0].Limits.ExpiresAt.IsZero() {
		t.Fatalf("proxies: %+v", ps)
	}
}
