package bot

import (
	"testing"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/app/pay"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// A user spends referral credits on a key slot and on data from the
// referrals screen; a double tap spends once; a short balance is explained.
func TestSpendCreditsFromReferrals(t *testing.T) {
	w := newWorld(t)
	w.putPlan("Basic", 100, 299, model.WireGuard)
	c := w.chat(7101, "en")
	c.send("/start")
	u, _ := w.st.UserByTelegram(7101)
	slot, _ := w.pay.CreditCost(pay.Product{Kind: pay.KindSlots, Qty: 1})
	pkg := w.pay.Catalogue().DataPackages[0]
	dataCost, _ := w.pay.CreditCost(pay.Product{Kind: pay.KindData, RefID: w.id(), Qty: pkg.Qty})
	if _, err := w.app.AddCredits(ctx(), app.ActorCLI, u.ID, slot+dataCost, "gift", "t1"); err != nil {
		t.Fatal(err)
	}
	plans, _, _ := w.app.Plans(ctx(), store.Page{Limit: 10})
	if _, err := w.app.GrantPlan(ctx(), app.ActorCLI, u.ID, plans[0].ID, 1, 0); err != nil {
		t.Fatal(err)
	}
	k, err := w.app.CreateKey(ctx(), app.ActorCLI, app.KeyRequest{UserID: u.ID, Type: model.WireGuard, Name: "phone"})
	if err != nil {
		t.Fatal(err)
	}

	menu := c.press(c.send("/referrals"), "Spend credits")
	mustContain(t, menu, "Balance: 125 credits")
	done := c.press(menu, "+1 key slot")
	mustContain(t, done, "one more key slot", "Balance: 75")
	c.press(menu, "+1 key slot") // the same button again: no second spend
	if got, _ := w.st.User(u.ID); got.ExtraSlots != 1 {
		t.Fatalf("slots %d after a double tap", got.ExtraSlots)
	}
	evs := c.press(c.press(c.press(done, "Back"), "Data for a key"), "phone")
	mustContain(t, c.press(evs, size(uint64(pkg.Qty))), "more for “phone”", "Balance: 0")
	got, _ := w.st.Key(k.ID)
	if got.Limits.DataCap != k.Limits.DataCap+uint64(pkg.Qty) {
		t.Fatalf("cap %d", got.Limits.DataCap)
	}
	mustContain(t, c.press(c.press(c.send("/referrals"), "Spend credits"), "+1 key slot"), "enough credits")
	if got, _ := w.st.User(u.ID); got.ExtraSlots != 1 {
		t.Fatalf("slots %d after a refused spend", got.ExtraSlots)
	}
}

// An admin revokes a user's plan from the user card and by command; the
// daily trial budget is explained to the user.
func TestAdminRevokesPlanAndTrialBudget(t *testing.T) {
	w := newWorld(t)
	w.putPlan("Basic", 100, 299, model.WireGuard)
	admin := w.chat(adminTG, "es")
	admin.send("/start")
	c := w.chat(7201, "en")
	c.send("/start")
	u, _ := w.st.UserByTelegram(7201)
	mustContain(t, admin.send("/grant 7201 basic 1"), "Basic")
	evs := admin.press(admin.send("/find 7201"), "Revocar plan")
	mustContain(t, evs, "¿Revocar ahora")
	admin.press(evs, "Sí, revocar")
	if _, _, err := w.st.CurrentPlan(u.ID, w.now()); err == nil {
		t.Fatal("plan still current after the revoke")
	}
	mustContain(t, admin.send("/grant 7201 basic 1"), "Basic")
	mustContain(t, admin.send("/revokeplan 7201 abuse"), "Plan revocado")
	mustContain(t, admin.send("/revokeplan 7201"), "No se encontró")
	mustContain(t, admin.send("/revokeplan"), "Uso: /revokeplan")
	mustContain(t, c.send("/revokeplan 7201"), "Unknown command")

	p := app.DefaultPolicy()
	p.TrialsPerDay = 1
	if err := w.app.SetPolicy(ctx(), app.ActorCLI, p); err != nil {
		t.Fatal(err)
	}
	if _, err := w.app.CreateKey(ctx(), app.ActorCLI, app.KeyRequest{UserID: u.ID, Type: model.Outline, Trial: true}); err != nil {
		t.Fatal(err)
	}
	mustContain(t, c.press(c.send("/trial"), "WireGuard"), "free trials are all given out")
}
