package bot

import (
	"errors"
	"fmt"
	"strconv"

	tele "gopkg.in/telebot.v3"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/app/pay"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// Buying: every price shown comes from pay.Service.Price, every invoice from
// the payment service; the bot only walks the user to a product.

// payErrorKey names the catalogue message of a payment refusal ("" for
// other errors).
func payErrorKey(err error) string {
	switch {
	case errors.Is(err, pay.ErrNotForSale):
		return "error.not_for_sale"
	case errors.Is(err, pay.ErrOpenInvoices):
		return "error.open_invoices"
	case errors.Is(err, pay.ErrFirstPurchase):
		return "error.first_purchase"
	case errors.Is(err, pay.ErrNoProvider):
		return "error.no_provider"
	}
	return ""
}

func (r *req) buy() error {
	return r.show(r.t("buy.title"), kb(
		row(r.btn(r.t("btn.plans"), "buy.plans")),
		row(r.btn(r.t("btn.data"), "buy.data"), r.btn(r.t("btn.slots"), "buy.slots")),
		row(r.btn(r.t("btn.credits"), "buy.credits")),
		r.back()))
}

// priceLabel is a product's price in Stars and US dollars.
func (r *req) priceLabel(pr pay.Product) (string, error) {
	stars, cents, err := r.b.pay.Price(pr)
	if err != nil {
		return "", err
	}
	return r.t("buy.price", "stars", stars, "usd", usd(cents)), nil
}

func (r *req) buyPlans() error {
	plans, _, err := r.b.app.Plans(r.ctx, store.Page{Limit: 50})
	if err != nil {
		return err
	}
	var rows [][]tele.InlineButton
	for _, p := range plans {
		if !p.Active {
			continue
		}
		price, err := r.priceLabel(pay.Product{Kind: pay.KindPlan, RefID: p.ID, Months: 1})
		if err != nil {
			continue
		}
		rows = append(rows, row(r.btn(fmt.Sprintf("%s · %s", p.Name, price), "buy.plan", p.ID)))
	}
	if len(rows) == 0 {
		return r.show(r.t("buy.no_plans"), kb(r.back()))
	}
	rows = append(rows, row(r.btn(r.t("btn.back"), "buy")))
	return r.show(r.t("buy.plans"), kb(rows...))
}

// plan is the active plan a callback names.
func (r *req) plan() (*model.Plan, error) {
	if len(r.args) < 1 || !model.ValidID(r.args[0]) {
		return nil, model.ErrInvalid
	}
	p, err := r.b.app.Store().Plan(r.args[0])
	if err != nil {
		return nil, err
	}
	if !p.Active {
		return nil, pay.ErrNotForSale
	}
	return p, nil
}

// buyPlan shows a plan and its durations with their prices.
func (r *req) buyPlan() error {
	p, err := r.plan()
	if err != nil {
		return err
	}
	var rows [][]tele.InlineButton
	for _, m := range []int{1, 3, 6, 12} {
		if m > r.b.pay.Catalogue().MaxMonths {
			break
		}
		price, err := r.priceLabel(pay.Product{Kind: pay.KindPlan, RefID: p.ID, Months: m})
		if err != nil {
			return err
		}
		rows = append(rows, row(r.btn(r.t("buy.months", "n", m, "price", price), "buy.months", p.ID, strconv.Itoa(m))))
	}
	rows = append(rows, row(r.btn(r.t("btn.back"), "buy.plans")))
	capText := r.t("profile.unlimited")
	if p.DataCapBytes > 0 {
		capText = size(p.DataCapBytes)
	}
	return r.show(r.t("buy.plan", "name", p.Name, "days", p.DurationDays, "cap", capText, "keys", p.MaxKeys), kb(rows...))
}

func months(s string) (int, bool) {
	m, err := strconv.Atoi(s)
	return m, err == nil && m >= 1 && m <= 36
}

// buyMonths asks which protocol the plan's first key should use.
func (r *req) buyMonths() error {
	p, err := r.plan()
	if err != nil {
		return err
	}
	if len(r.args) != 2 {
		return model.ErrInvalid
	}
	if _, ok := months(r.args[1]); !ok {
		return model.ErrInvalid
	}
	var rows [][]tele.InlineButton
	for _, t := range p.Protocols {
		if typeCode[t] != "" {
			rows = append(rows, row(r.btn(typeName(t), "buy.type", p.ID, r.args[1], typeCode[t])))
		}
	}
	rows = append(rows, row(r.btn(r.t("btn.back"), "buy.plan", p.ID)))
	return r.show(r.t("buy.choose_type"), kb(rows...))
}

// payButtons are the two ways to pay for one product.
func (r *req) payButtons(pr pay.Product, args ...string) ([]tele.InlineButton, error) {
	stars, cents, err := r.b.pay.Price(pr)
	if err != nil {
		return nil, err
	}
	return row(r.btn(r.t("btn.pay_stars", "stars", stars), "buy.pay", append(args, "s")...),
		r.btn(r.t("btn.pay_qvapay", "usd", usd(cents)), "buy.pay", append(args, "q")...)), nil
}

func (r *req) buyType() error {
	p, err := r.plan()
	if err != nil || len(r.args) != 3 {
		return errors.Join(err, model.ErrInvalid)
	}
	m, ok := months(r.args[1])
	if _, tok := codeType(r.args[2]); !ok || !tok {
		return model.ErrInvalid
	}
	btns, err := r.payButtons(pay.Product{Kind: pay.KindPlan, RefID: p.ID, Months: m}, "p", p.ID, r.args[1], r.args[2])
	if err != nil {
		return err
	}
	return r.show(r.t("buy.choose_pay"), kb(btns, row(r.btn(r.t("btn.back"), "buy.months", p.ID, r.args[1]))))
}

// buyData lists the user's keys that take a data package.
func (r *req) buyData() error { return r.dataKeys("buy.datak", "buy") }

// dataKeys lists the user's keys that take a data package (capped, not
// revoked), each button leading to next with the key's id; back returns.
func (r *req) dataKeys(next, back string) error {
	p, err := r.b.app.Profile(r.ctx, r.user.ID)
	if err != nil {
		return err
	}
	var rows [][]tele.InlineButton
	for _, k := range p.Keys {
		if k.Limits.DataCap > 0 && (k.Status == model.KeyActive || k.Status == model.KeySuspended) {
			rows = append(rows, row(r.btn(fmt.Sprintf("%s · %s", k.Name, typeName(k.Type)), next, k.ID)))
		}
	}
	if len(rows) == 0 {
		return r.show(r.t("buy.no_data_keys"), kb(row(r.btn(r.t("btn.back"), back))))
	}
	rows = append(rows, row(r.btn(r.t("btn.back"), back)))
	return r.show(r.t("buy.data_key"), kb(rows...))
}

func (r *req) buyDataKey() error {
	k, err := r.ownKey()
	if err != nil {
		return err
	}
	var rows [][]tele.InlineButton
	for i, pkg := range r.b.pay.Catalogue().DataPackages {
		btns, err := r.payButtons(pay.Product{Kind: pay.KindData, RefID: k.ID, Qty: pkg.Qty}, "d", k.ID, strconv.Itoa(i))
		if err != nil {
			return err
		}
		rows = append(rows, row(tele.InlineButton{Text: size(uint64(pkg.Qty)), Data: r.b.cbData(r.tgID, "buy.datak", k.ID)}), btns)
	}
	rows = append(rows, row(r.btn(r.t("btn.back"), "buy.data")))
	return r.show(r.t("buy.data_packages", "name", k.Name), kb(rows...))
}

func (r *req) buySlots() error {
	cat := r.b.pay.Catalogue()
	var rows [][]tele.InlineButton
	for n := 1; n <= min(cat.MaxSlots, 3); n++ {
		btns, err := r.payButtons(pay.Product{Kind: pay.KindSlots, Qty: int64(n)}, "s", strconv.Itoa(n))
		if err != nil {
			return err
		}
		rows = append(rows, row(tele.InlineButton{Text: r.t("buy.slots_n", "n", n), Data: r.b.cbData(r.tgID, "buy.slots")}), btns)
	}
	rows = append(rows, row(r.btn(r.t("btn.back"), "buy")))
	return r.show(r.t("buy.slots"), kb(rows...))
}

func (r *req) buyCredits() error {
	var rows [][]tele.InlineButton
	for i, pkg := range r.b.pay.Catalogue().CreditPackages {
		btns, err := r.payButtons(pay.Product{Kind: pay.KindCredits, Qty: pkg.Qty}, "c", strconv.Itoa(i))
		if err != nil {
			return err
		}
		rows = append(rows, row(tele.InlineButton{Text: r.t("buy.credits_n", "n", pkg.Qty), Data: r.b.cbData(r.tgID, "buy.credits")}), btns)
	}
	rows = append(rows, row(r.btn(r.t("btn.back"), "buy")))
	return r.show(r.t("buy.credits"), kb(rows...))
}

// product rebuilds the product a pay button names; the last argument is the
// provider code.
func (r *req) product() (pay.Product, model.KeyType, string, error) {
	bad := func() (pay.Product, model.KeyType, string, error) { return pay.Product{}, "", "", model.ErrInvalid }
	a := r.args
	if len(a) < 2 {
		return bad()
	}
	provider := map[string]string{"s": pay.Stars, "q": pay.QvaPay}[a[len(a)-1]]
	if provider == "" {
		return bad()
	}
	cat := r.b.pay.Catalogue()
	switch {
	case a[0] == "p" && len(a) == 5:
		m, ok := months(a[2])
		t, tok := codeType(a[3])
		if !ok || !tok || !model.ValidID(a[1]) {
			return bad()
		}
		return pay.Product{Kind: pay.KindPlan, RefID: a[1], Months: m}, t, provider, nil
	case a[0] == "d" && len(a) == 4:
		i, err := strconv.Atoi(a[2])
		if err != nil || i < 0 || i >= len(cat.DataPackages) || !model.ValidID(a[1]) {
			return bad()
		}
		return pay.Product{Kind: pay.KindData, RefID: a[1], Qty: cat.DataPackages[i].Qty}, "", provider, nil
	case a[0] == "s" && len(a) == 3:
		n, err := strconv.Atoi(a[1])
		if err != nil {
			return bad()
		}
		return pay.Product{Kind: pay.KindSlots, Qty: int64(n)}, "", provider, nil
	case a[0] == "c" && len(a) == 3:
		i, err := strconv.Atoi(a[1])
		if err != nil || i < 0 || i >= len(cat.CreditPackages) {
			return bad()
		}
		return pay.Product{Kind: pay.KindCredits, Qty: cat.CreditPackages[i].Qty}, "", provider, nil
	}
	return bad()
}

// buyPay opens the invoice: Stars in the chat, QvaPay as a pay link. What
// it buys is delivered when the payment settles (deliver.go).
func (r *req) buyPay() error {
	pr, t, provider, err := r.product()
	if err != nil {
		return err
	}
	actor := pay.Actor(app.BotActor(r.tgID))
	var inv *pay.Invoice
	if provider == pay.Stars {
		inv, err = r.b.pay.SendStarsInvoice(r.ctx, actor, r.user.ID, pr)
	} else {
		inv, err = r.b.pay.Buy(r.ctx, actor, r.user.ID, pr, pay.QvaPay)
	}
	if err != nil {
		return err
	}
	if err := r.b.saveAwait(inv.PaymentID, awaitRec{Chat: r.chat, Type: t}); err != nil {
		return err
	}
	if provider == pay.QvaPay {
		return r.say(r.t("buy.qvapay_link", "usd", usd(inv.Amount), "id", inv.PaymentID),
			kb(row(urlBtn(r.t("btn.open_qvapay"), inv.URL))))
	}
	return nil
}
