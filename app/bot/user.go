package bot

import (
	"errors"
	"fmt"
	"strings"

	tele "gopkg.in/telebot.v3"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/app/bot/i18n"
	"github.com/usipipo/usipipo/store/model"
)

// routes names every command, callback and flow.
func (b *Bot) routes() {
	b.commands = map[string]handler{
		"/start": (*req).start, "/help": (*req).help, "/menu": (*req).mainMenu, "/cancel": (*req).cancel,
		"/lang": (*req).language, "/profile": (*req).profile, "/referrals": (*req).referrals, "/usage": (*req).usage,
		"/keys": (*req).keys, "/trial": (*req).trial, "/newkey": (*req).newKey, "/proxy": (*req).proxy,
		"/buy": (*req).buy, "/privacy": (*req).privacy, "/support": (*req).support, "/tickets": (*req).myTickets,
		"/proxies": (*req).freeProxies,
	}
	b.callbacks = map[string]handler{
		"menu": (*req).mainMenu, "help": (*req).help, "lang": (*req).language, "lang.set": (*req).setLanguage,
		"profile": (*req).profile, "refs": (*req).referrals, "usage": (*req).usage,
		"keys": (*req).keys, "key": (*req).keyCard, "key.conf": (*req).keyConfig, "key.ren": (*req).keyRename,
		"key.rot": (*req).keyRotate, "key.rev": (*req).keyRevoke, "key.revok": (*req).keyRevokeConfirmed,
		"trial": (*req).trial, "trial.go": (*req).trialGo, "new": (*req).newKey, "new.go": (*req).newKeyGo,
		"proxy": (*req).proxy,
		"buy":   (*req).buy, "buy.plans": (*req).buyPlans, "buy.plan": (*req).buyPlan, "buy.months": (*req).buyMonths,
		"buy.type": (*req).buyType, "buy.pay": (*req).buyPay, "buy.data": (*req).buyData, "buy.datak": (*req).buyDataKey,
		"buy.slots": (*req).buySlots, "buy.credits": (*req).buyCredits,
		"priv": (*req).privacy, "priv.exp": (*req).privacyExport, "priv.del": (*req).privacyDelete,
		"priv.delok": (*req).privacyDeleteConfirmed,
		"sup":        (*req).support, "sup.list": (*req).myTickets, "sup.view": (*req).ticketView, "sup.reply": (*req).ticketReply,
		"sup.close": (*req).ticketClose,
	}
	b.flows = map[string]handler{
		"rename": (*req).renameStep, "ticket": (*req).ticketStep, "reply": (*req).replyStep,
	}
	b.adminRoutes()
	b.spendRoutes()
}

// menu is the main keyboard.
func (r *req) menu() *tele.ReplyMarkup {
	return kb(
		row(r.btn(r.t("btn.profile"), "profile"), r.btn(r.t("btn.keys"), "keys")),
		row(r.btn(r.t("btn.trial"), "trial"), r.btn(r.t("btn.buy"), "buy")),
		row(r.btn(r.t("btn.proxy"), "proxy"), r.btn(r.t("btn.usage"), "usage")),
		row(r.btn(r.t("btn.referrals"), "refs"), r.btn(r.t("btn.support"), "sup")),
		row(r.btn(r.t("btn.language"), "lang"), r.btn(r.t("btn.privacy"), "priv"), r.btn(r.t("btn.help"), "help")),
	)
}

func (r *req) back() []tele.InlineButton { return row(r.btn(r.t("btn.back"), "menu")) }

// start registers the user, with the inviter's code from the start
// parameter (t.me/bot?start=CODE).
func (r *req) start() error {
	code := r.arg
	if len(code) > 32 || strings.ContainsAny(code, " \n") {
		code = ""
	}
	if r.user == nil {
		if err := r.register(code); err != nil {
			return err
		}
	}
	if r.user.Erased {
		return r.say(r.t("error.erased"), nil)
	}
	if r.user.Banned {
		return r.say(r.t("error.banned"), nil)
	}
	return r.say(r.t("start.welcome", "name", r.from.FirstName), r.menu())
}

func (r *req) help() error {
	text := r.t("help.text")
	if r.isAdmin() {
		text += "\n\n" + r.t("help.admin")
	}
	return r.show(text, kb(r.back()))
}

func (r *req) mainMenu() error { return r.show(r.t("menu.title"), r.menu()) }

// cancel ends any multi-step flow.
func (r *req) cancel() error {
	st, err := r.b.loadState(r.tgID)
	if err != nil {
		return err
	}
	if err := r.b.clearState(r.tgID); err != nil {
		return err
	}
	if st == nil {
		return r.say(r.t("cancel.nothing"), r.menu())
	}
	return r.say(r.t("cancel.done"), r.menu())
}

func (r *req) language() error {
	return r.show(r.t("lang.choose"), kb(row(r.btn("🇪🇸 Español", "lang.set", i18n.Spanish), r.btn("🇬🇧 English", "lang.set", i18n.English)), r.back()))
}

func (r *req) setLanguage() error {
	if len(r.args) != 1 || (r.args[0] != i18n.Spanish && r.args[0] != i18n.English) {
		return model.ErrInvalid
	}
	if r.user == nil {
		if err := r.register(""); err != nil {
			return err
		}
	}
	if err := r.b.app.SetLanguage(r.ctx, app.BotActor(r.tgID), r.user.ID, r.args[0]); err != nil {
		return err
	}
	r.lang = r.args[0]
	return r.show(r.t("lang.set"), r.menu())
}

// referralLink is the user's invitation link.
func (r *req) referralLink(code string) string {
	if name := r.b.botName(); name != "" {
		return fmt.Sprintf("https://t.me/%s?start=%s", name, code)
	}
	return code
}

func (r *req) profile() error {
	p, err := r.b.app.Profile(r.ctx, r.user.ID)
	if err != nil {
		return err
	}
	plan, expiry := r.t("profile.no_plan"), "—"
	if p.Plan != nil {
		plan, expiry = p.Plan.Name, day(p.Sub.ExpiresAt)
	}
	left := r.t("profile.unlimited")
	if p.DataCap > 0 {
		left = size(p.DataCap - min(p.DataUsed, p.DataCap))
	}
	text := r.t("profile.text", "id", p.User.ID, "plan", plan, "expiry", expiry, "used", size(p.DataUsed), "left", left,
		"keys", len(p.Keys), "proxies", len(p.Proxies), "slots", p.User.ExtraSlots, "credits", p.User.Balance,
		"link", r.referralLink(p.User.ReferralCode))
	return r.show(text, kb(row(r.btn(r.t("btn.keys"), "keys"), r.btn(r.t("btn.buy"), "buy")), r.back()))
}

func (r *req) referrals() error {
	s, err := r.b.app.Referrals(r.ctx, r.user.ID)
	if err != nil {
		return err
	}
	bal, err := r.b.app.Balance(r.ctx, r.user.ID)
	if err != nil {
		return err
	}
	text := r.t("referrals.text", "link", r.referralLink(s.Code), "invited", s.Invited, "vested", s.Vested,
		"earned", s.Earned, "pending", s.Pending, "credits", bal, "reward", r.b.app.Policy().ReferralCredits)
	return r.show(text, kb(row(r.btn(r.t("btn.spend_credits"), "refs.spend")), r.back()))
}

func (r *req) usage() error {
	p, err := r.b.app.Profile(r.ctx, r.user.ID)
	if err != nil {
		return err
	}
	if len(p.Keys)+len(p.Proxies) == 0 {
		return r.show(r.t("usage.none"), kb(row(r.btn(r.t("btn.trial"), "trial"), r.btn(r.t("btn.buy"), "buy")), r.back()))
	}
	var sb strings.Builder
	sb.WriteString(r.t("usage.title"))
	line := func(name string, t model.KeyType, used uint64, l model.Limits, st model.KeyStatus) {
		limit := r.t("profile.unlimited")
		if l.DataCap > 0 {
			limit = size(l.DataCap)
		}
		sb.WriteString("\n" + r.t("usage.line", "name", name, "type", typeName(t), "used", size(used), "cap", limit,
			"expiry", day(l.ExpiresAt), "status", r.t("status."+string(st))))
	}
	for _, k := range p.Keys {
		line(k.Name, k.Type, k.PeriodUsage(), k.Limits, k.Status)
	}
	for _, x := range p.Proxies {
		line("MTProto", model.MTProto, x.PeriodUsage(), x.Limits, x.Status)
	}
	return r.show(sb.String(), kb(r.back()))
}

// isDomain reports whether err is a refusal the user should read rather
// than an internal failure.
func isDomain(err error) bool {
	for _, ue := range userErrors {
		if errors.Is(err, ue.err) {
			return true
		}
	}
	return payErrorKey(err) != ""
}

// freeProxies lists the best working public proxies (Shadowmere), checked
// by the node itself: /proxies [COUNTRY].
func (r *req) freeProxies() error {
	ps, err := r.b.app.FreeProxies(r.ctx, strings.TrimSpace(r.arg), 5)
	if errors.Is(err, app.ErrFreeProxiesOff) {
		return r.say(r.t("proxies.off"), nil)
	}
	if err != nil {
		return err
	}
	if len(ps) == 0 {
		return r.say(r.t("proxies.none"), nil)
	}
	var sb strings.Builder
	sb.WriteString(r.t("proxies.title"))
	for _, p := range ps {
		country := p.Country
		if country == "" {
			country = "??"
		}
		sb.WriteString("\n\n" + r.t("proxies.line", "country", country, "ms", int(p.LatencyMS), "link", p.Config.Text))
	}
	return r.say(cut(sb.String(), 4000), nil)
}
