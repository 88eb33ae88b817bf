package bot

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	tele "gopkg.in/telebot.v3"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/app/pay"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// adminCommands are the commands only admins may use.
var adminCommands = map[string]bool{"/admin": true, "/status": true, "/find": true, "/ban": true, "/unban": true,
	"/grant": true, "/role": true, "/credits": true, "/refund": true, "/audit": true, "/queue": true, "/broadcast": true,
	"/revokeplan": true}

func (b *Bot) adminRoutes() {
	for name, h := range map[string]handler{
		"/admin": (*req).adminMenu, "/status": (*req).adminStatus, "/find": (*req).adminFind, "/ban": (*req).adminBan,
		"/unban": (*req).adminUnban, "/grant": (*req).adminGrant, "/role": (*req).adminRole, "/credits": (*req).adminCredits,
		"/refund": (*req).adminRefund, "/audit": (*req).adminAudit, "/queue": (*req).adminQueue,
		"/broadcast": (*req).adminBroadcast,
	} {
		b.commands[name] = h
	}
	for name, h := range map[string]handler{
		"adm": (*req).adminMenu, "adm.status": (*req).adminStatus, "adm.queue": (*req).adminQueue,
		"adm.user": (*req).adminUserCard, "adm.ban": (*req).adminBanButton, "adm.unban": (*req).adminUnbanButton,
		"adm.pays": (*req).adminPayments, "adm.refund": (*req).adminRefundButton, "adm.refok": (*req).adminRefundConfirmed,
		"adm.audit": (*req).adminAuditButton,
	} {
		b.callbacks[name] = h
	}
}

func (r *req) actor() app.Actor { return app.BotActor(r.tgID) }

func (r *req) adminMenu() error {
	return r.show(r.t("admin.menu"), kb(
		row(r.btn(r.t("btn.status"), "adm.status"), r.btn(r.t("btn.queue"), "adm.queue")),
		row(r.btn(r.t("btn.audit"), "adm.audit")), r.back()))
}

func (r *req) adminStatus() error {
	s, err := r.b.app.Stats(r.ctx, 1)
	if err != nil {
		return err
	}
	var today app.DayStat
	if len(s.Days) > 0 {
		today = s.Days[len(s.Days)-1]
	}
	text := r.t("admin.status", "users", s.Users, "active", s.ActiveUsers, "wg", s.ActiveKeys[model.WireGuard],
		"ss", s.ActiveKeys[model.Outline], "mt", s.ActiveProxies, "stars", today.RevenueStars, "usd", usd(today.RevenueUSDCents),
		"new", today.NewUsers)
	if r.b.status != nil {
		text += "\n" + r.b.status(r.ctx)
	}
	return r.show(cut(text, 4000), kb(row(r.btn(r.t("btn.back"), "adm"))))
}

// target finds the user the first argument names (id, Telegram id or
// referral code).
func (r *req) target() (*app.UserView, []string, error) {
	f := strings.Fields(r.arg)
	if len(f) == 0 {
		return nil, nil, fmt.Errorf("a user is required: %w", model.ErrInvalid)
	}
	u, err := r.b.app.FindUser(r.ctx, f[0])
	return u, f[1:], err
}

func (r *req) adminFind() error {
	u, _, err := r.target()
	if err != nil {
		return err
	}
	return r.userCard(u)
}

func (r *req) adminUserCard() error {
	if len(r.args) != 1 {
		return model.ErrInvalid
	}
	u, err := r.b.app.User(r.ctx, r.args[0])
	if err != nil {
		return err
	}
	return r.userCard(u)
}

func (r *req) userCard(u *app.UserView) error {
	p, err := r.b.app.Profile(r.ctx, u.ID)
	if err != nil {
		return err
	}
	plan, expiry := r.t("profile.no_plan"), "—"
	if p.Plan != nil {
		plan, expiry = p.Plan.Name, day(p.Sub.ExpiresAt)
	}
	text := r.t("admin.user", "id", u.ID, "tg", u.TelegramID, "username", u.Personal.Username, "role", u.Role,
		"banned", u.Banned, "plan", plan, "expiry", expiry, "keys", len(p.Keys), "proxies", len(p.Proxies),
		"credits", u.Balance, "created", day(u.Created))
	ban := r.btn(r.t("btn.ban"), "adm.ban", u.ID)
	if u.Banned {
		ban = r.btn(r.t("btn.unban"), "adm.unban", u.ID)
	}
	var revoke []tele.InlineButton
	if p.Plan != nil {
		revoke = row(r.btn(r.t("btn.revoke_plan"), "adm.rvk", u.ID))
	}
	return r.show(text, kb(row(ban, r.btn(r.t("btn.payments"), "adm.pays", u.ID)), revoke,
		row(r.btn(r.t("btn.audit"), "adm.audit", u.ID)), row(r.btn(r.t("btn.back"), "adm"))))
}

func (r *req) adminBan() error {
	u, rest, err := r.target()
	if err != nil {
		return err
	}
	if err := r.b.app.Ban(r.ctx, r.actor(), u.ID, cut(strings.Join(rest, " "), 200)); err != nil {
		return err
	}
	return r.say(r.t("admin.banned", "id", u.ID), nil)
}

func (r *req) adminUnban() error {
	u, _, err := r.target()
	if err != nil {
		return err
	}
	if err := r.b.app.Unban(r.ctx, r.actor(), u.ID); err != nil {
		return err
	}
	return r.say(r.t("admin.unbanned", "id", u.ID), nil)
}

func (r *req) adminBanButton() error {
	if len(r.args) != 1 {
		return model.ErrInvalid
	}
	if err := r.b.app.Ban(r.ctx, r.actor(), r.args[0], "banned by an admin"); err != nil {
		return err
	}
	return r.adminUserCard()
}

func (r *req) adminUnbanButton() error {
	if len(r.args) != 1 {
		return model.ErrInvalid
	}
	if err := r.b.app.Unban(r.ctx, r.actor(), r.args[0]); err != nil {
		return err
	}
	return r.adminUserCard()
}

// adminGrant: /grant USER PLAN MONTHS — PLAN is a plan id or name.
func (r *req) adminGrant() error {
	u, rest, err := r.target()
	if err != nil {
		return err
	}
	if len(rest) != 2 {
		return r.say(r.t("admin.usage_grant"), nil)
	}
	m, ok := months(rest[1])
	if !ok {
		return r.say(r.t("admin.usage_grant"), nil)
	}
	plan, err := r.findPlan(rest[0])
	if err != nil {
		return err
	}
	sub, err := r.b.app.GrantPlanOnce(r.ctx, r.actor(), onceKey(r.ctx, r.tgID, "grant"), u.ID, plan.ID, m, 0)
	if err != nil {
		return err
	}
	return r.say(r.t("admin.granted", "plan", plan.Name, "id", u.ID, "expiry", day(sub.ExpiresAt)), nil)
}

func (r *req) findPlan(q string) (*model.Plan, error) {
	plans, _, err := r.b.app.Plans(r.ctx, store.Page{Limit: store.MaxLimit})
	if err != nil {
		return nil, err
	}
	for i := range plans {
		if plans[i].ID == q || strings.EqualFold(plans[i].Name, q) {
			return &plans[i], nil
		}
	}
	return nil, fmt.Errorf("plan %q: %w", q, model.ErrNotFound)
}

// adminRole: /role USER admin|user [DAYS] — user revokes the admin role;
// DAYS 0 or absent: no expiry.
func (r *req) adminRole() error {
	u, rest, err := r.target()
	if err != nil {
		return err
	}
	if len(rest) < 1 || len(rest) > 2 || (rest[0] != "admin" && rest[0] != "user") {
		return r.say(r.t("admin.usage_role"), nil)
	}
	var until time.Time
	if len(rest) == 2 {
		d, err := strconv.Atoi(rest[1])
		if err != nil || d < 0 || d > 3650 {
			return r.say(r.t("admin.usage_role"), nil)
		}
		if d > 0 {
			until = r.b.now().Add(time.Duration(d) * 24 * time.Hour)
		}
	}
	revoke := rest[0] == "user"
	if err := r.b.app.GrantRole(r.ctx, r.actor(), u.ID, model.RoleAdmin, until, revoke); err != nil {
		return err
	}
	return r.say(r.t("admin.role_set", "id", u.ID, "role", rest[0], "until", day(until)), nil)
}

// adminCredits: /credits USER AMOUNT (negative takes credits away).
func (r *req) adminCredits() error {
	u, rest, err := r.target()
	if err != nil {
		return err
	}
	n, perr := int64(0), error(nil)
	if len(rest) == 1 {
		n, perr = strconv.ParseInt(rest[0], 10, 64)
	}
	if len(rest) != 1 || perr != nil || n == 0 || n > 1_000_000 || n < -1_000_000 {
		return r.say(r.t("admin.usage_credits"), nil)
	}
	key := onceKey(r.ctx, r.tgID, "credits")
	if key == "" { // not from the intake: no repeat to guard against
		key = "bot:" + strconv.FormatInt(r.tgID, 10) + ":" + r.b.ref() + r.b.ref()
	}
	bal, err := r.b.app.AddCredits(r.ctx, r.actor(), u.ID, n, "admin grant", key)
	if err != nil {
		return err
	}
	return r.say(r.t("admin.credits_set", "id", u.ID, "n", n, "balance", bal), nil)
}

// adminRefund: /refund PAYMENT — Stars are refunded through Telegram;
// /refund PAYMENT REF records a refund made in QvaPay by hand.
func (r *req) adminRefund() error {
	f := strings.Fields(r.arg)
	if len(f) < 1 || len(f) > 2 || !model.ValidID(f[0]) {
		return r.say(r.t("admin.usage_refund"), nil)
	}
	return r.refund(f[0], f[1:])
}

func (r *req) refund(id string, ref []string) error {
	var err error
	if len(ref) == 1 {
		err = r.b.pay.RecordRefund(r.ctx, pay.Actor(r.actor()), id, ref[0])
	} else {
		err = r.b.pay.RefundStars(r.ctx, pay.Actor(r.actor()), id)
	}
	if errors.Is(err, model.ErrState) {
		return r.say(r.t("admin.refund_state"), nil)
	}
	if err != nil {
		return err
	}
	return r.say(r.t("admin.refunded", "id", id), nil)
}

func (r *req) adminPayments() error {
	if len(r.args) != 1 {
		return model.ErrInvalid
	}
	ps, _, err := r.b.app.Store().Payments(r.args[0], store.Page{Limit: 10})
	if err != nil {
		return err
	}
	var rows [][]tele.InlineButton
	var sb strings.Builder
	sb.WriteString(r.t("admin.payments"))
	for _, p := range ps {
		sb.WriteString("\n" + r.t("admin.payment_line", "id", p.ID, "amount", p.Amount, "currency", p.Currency,
			"status", p.Status, "kind", p.Product.Kind, "created", day(p.Created)))
		if p.Status == model.PayPaid && p.Provider == pay.Stars {
			rows = append(rows, row(r.btn(r.t("btn.refund", "id", p.ID[len(p.ID)-6:]), "adm.refund", p.ID)))
		}
	}
	rows = append(rows, row(r.btn(r.t("btn.back"), "adm.user", r.args[0])))
	return r.show(cut(sb.String(), 4000), kb(rows...))
}

func (r *req) adminRefundButton() error {
	if len(r.args) != 1 {
		return model.ErrInvalid
	}
	return r.show(r.t("admin.refund_confirm", "id", r.args[0]),
		kb(row(r.btn(r.t("btn.yes_refund"), "adm.refok", r.args[0]), r.btn(r.t("btn.no"), "adm"))))
}

func (r *req) adminRefundConfirmed() error {
	if len(r.args) != 1 || !model.ValidID(r.args[0]) {
		return model.ErrInvalid
	}
	return r.refund(r.args[0], nil)
}

// adminAudit: /audit [USER] — the newest audit entries.
func (r *req) adminAudit() error {
	f := store.AuditFilter{}
	if strings.TrimSpace(r.arg) != "" {
		u, _, err := r.target()
		if err != nil {
			return err
		}
		f.UserID = u.ID
	}
	return r.audit(f)
}

func (r *req) adminAuditButton() error {
	f := store.AuditFilter{}
	if len(r.args) == 1 {
		f.UserID = r.args[0]
	}
	return r.audit(f)
}

func (r *req) audit(f store.AuditFilter) error {
	es, _, err := r.b.app.Audit(r.ctx, f, store.Page{Limit: 15})
	if err != nil {
		return err
	}
	var sb strings.Builder
	sb.WriteString(r.t("admin.audit"))
	for _, e := range es {
		line := fmt.Sprintf("\n%s · %s · %s", e.At.UTC().Format("01-02 15:04:05"), e.Actor, e.Action)
		if e.UserID != "" {
			line += " · " + e.UserID
		}
		if e.Error != "" {
			line += " · ✗ " + cut(e.Error, 80)
		}
		sb.WriteString(line)
	}
	return r.show(cut(sb.String(), 4000), kb(row(r.btn(r.t("btn.back"), "adm"))))
}

// adminQueue lists the open tickets, oldest first.
func (r *req) adminQueue() error {
	ts, _, err := r.b.app.Tickets(r.ctx, model.TicketOpen, "", store.Page{Limit: 20})
	if err != nil {
		return err
	}
	var rows [][]tele.InlineButton
	for _, t := range ts {
		rows = append(rows, row(r.btn(fmt.Sprintf("%s · %s", t.Updated.UTC().Format("01-02 15:04"), cut(t.Subject, 40)), "sup.view", t.ID)))
	}
	rows = append(rows, row(r.btn(r.t("btn.back"), "adm")))
	return r.show(r.t("admin.queue", "n", len(ts)), kb(rows...))
}

// adminBroadcast: /broadcast all|es|en|active TEXT — queued with the
// notifier, which sends within Telegram's limits and resumes after a restart.
func (r *req) adminBroadcast() error {
	if r.b.bcast == nil {
		return r.say(r.t("admin.broadcast_off"), nil)
	}
	seg, text, _ := strings.Cut(r.arg, " ")
	text = strings.TrimSpace(text)
	lang, active := "", false
	switch seg {
	case "all":
	case "es", "en":
		lang = seg
	case "active":
		active = true
	default:
		return r.say(r.t("admin.usage_broadcast"), nil)
	}
	if text == "" {
		return r.say(r.t("admin.usage_broadcast"), nil)
	}
	id, err := r.b.bcast(r.ctx, string(r.actor()), lang, active, text)
	if err != nil {
		return err
	}
	return r.say(r.t("admin.broadcast_queued", "id", id), nil)
}
