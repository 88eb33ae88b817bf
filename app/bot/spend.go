package bot

import (
	"strconv"
	"strings"

	tele "gopkg.in/telebot.v3"

	"github.com/usipipo/usipipo/app/pay"
	"github.com/usipipo/usipipo/store/model"
)

// spendRoutes are spending referral credits (data, key slots) and revoking
// a user's plan (admins).
func (b *Bot) spendRoutes() {
	for name, h := range map[string]handler{
		"refs.spend": (*req).spendMenu, "refs.slot": (*req).spendSlot, "refs.data": (*req).spendData,
		"refs.datak": (*req).spendDataKey, "refs.dgo": (*req).spendDataGo,
		"adm.rvk": (*req).adminRevokeButton, "adm.rvkok": (*req).adminRevokeConfirmed,
	} {
		b.callbacks[name] = h
	}
	b.commands["/revokeplan"] = (*req).adminRevokePlan
}

// intent is the idempotency key of one spend button: the nonce was drawn
// when the button was drawn, so a double tap (or a redelivered update)
// spends once and a freshly drawn menu spends again.
func (r *req) intent(nonce string, parts ...string) string {
	return "bot:" + strconv.FormatInt(r.tgID, 10) + ":" + nonce + ":" + strings.Join(parts, ":")
}

func (r *req) spendMenu() error {
	bal, err := r.b.app.Balance(r.ctx, r.user.ID)
	if err != nil {
		return err
	}
	cost, err := r.b.pay.CreditCost(pay.Product{Kind: pay.KindSlots, Qty: 1})
	if err != nil {
		return err
	}
	return r.show(r.t("spend.text", "credits", bal), kb(
		row(r.btn(r.t("btn.spend_slot", "cost", cost), "refs.slot", r.b.ref())),
		row(r.btn(r.t("btn.spend_data"), "refs.data")),
		row(r.btn(r.t("btn.back"), "refs"))))
}

func (r *req) spendSlot() error {
	if len(r.args) != 1 {
		return model.ErrInvalid
	}
	bal, err := r.b.pay.SpendCredits(r.ctx, pay.Actor(r.actor()), r.user.ID, pay.Product{Kind: pay.KindSlots, Qty: 1}, r.intent(r.args[0], "slot"))
	if err != nil {
		return err
	}
	return r.show(r.t("spend.slot_done", "credits", bal), kb(row(r.btn(r.t("btn.back"), "refs.spend"))))
}

// spendData lists the user's keys that take a data package.
func (r *req) spendData() error { return r.dataKeys("refs.datak", "refs.spend") }

func (r *req) spendDataKey() error {
	k, err := r.ownKey()
	if err != nil {
		return err
	}
	nonce := r.b.ref()
	var rows [][]tele.InlineButton
	for i, pkg := range r.b.pay.Catalogue().DataPackages {
		cost, err := r.b.pay.CreditCost(pay.Product{Kind: pay.KindData, RefID: k.ID, Qty: pkg.Qty})
		if err != nil {
			return err
		}
		rows = append(rows, row(r.btn(r.t("btn.spend_package", "size", size(uint64(pkg.Qty)), "cost", cost),
			"refs.dgo", k.ID, strconv.Itoa(i), nonce)))
	}
	rows = append(rows, row(r.btn(r.t("btn.back"), "refs.data")))
	return r.show(r.t("buy.data_packages", "name", k.Name), kb(rows...))
}

func (r *req) spendDataGo() error {
	if len(r.args) != 3 {
		return model.ErrInvalid
	}
	k, err := r.b.app.OwnKey(r.ctx, r.user.ID, r.args[0])
	if err != nil {
		return err
	}
	pkgs := r.b.pay.Catalogue().DataPackages
	i, err := strconv.Atoi(r.args[1])
	if err != nil || i < 0 || i >= len(pkgs) {
		return r.say(r.t("error.stale_button"), nil) // the catalogue changed since the button was drawn
	}
	pr := pay.Product{Kind: pay.KindData, RefID: k.ID, Qty: pkgs[i].Qty}
	bal, err := r.b.pay.SpendCredits(r.ctx, pay.Actor(r.actor()), r.user.ID, pr, r.intent(r.args[2], "data", k.ID, strconv.FormatInt(pr.Qty, 10)))
	if err != nil {
		return err
	}
	return r.show(r.t("spend.data_done", "size", size(uint64(pr.Qty)), "name", k.Name, "credits", bal),
		kb(row(r.btn(r.t("btn.back"), "refs.spend"))))
}

// adminRevokePlan: /revokeplan USER [REASON] — ends the user's current plan.
func (r *req) adminRevokePlan() error {
	u, rest, err := r.target()
	if err != nil {
		return r.say(r.t("admin.usage_revokeplan"), nil)
	}
	sub, err := r.b.app.RevokePlan(r.ctx, r.actor(), u.ID, "", cut(strings.Join(rest, " "), 200))
	if err != nil {
		return err
	}
	return r.say(r.t("admin.plan_revoked", "id", u.ID, "sub", sub.ID), nil)
}

func (r *req) adminRevokeButton() error {
	if len(r.args) != 1 {
		return model.ErrInvalid
	}
	return r.show(r.t("admin.revoke_confirm", "id", r.args[0]),
		kb(row(r.btn(r.t("btn.yes_revoke"), "adm.rvkok", r.args[0]), r.btn(r.t("btn.no"), "adm.user", r.args[0]))))
}

func (r *req) adminRevokeConfirmed() error {
	if len(r.args) != 1 || !model.ValidID(r.args[0]) {
		return model.ErrInvalid
	}
	if _, err := r.b.app.RevokePlan(r.ctx, r.actor(), r.args[0], "", "revoked by an admin"); err != nil {
		return err
	}
	return r.adminUserCard()
}
