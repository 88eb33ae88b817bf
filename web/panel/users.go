package panel

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// pageSize is the panel's list page length.
const pageSize = 50

func (p *panel) actor(c *fiber.Ctx) app.Actor { return app.PanelActor(p.current(c).admin) }

func pageOf(c *fiber.Ctx) store.Page {
	return store.Page{After: c.Query("after"), Limit: pageSize}
}

type usersData struct {
	Query, Banned string
	Users         []app.UserView
	Next          string
}

func (p *panel) users(c *fiber.Ctx) error {
	d := usersData{Query: strings.TrimSpace(c.Query("q")), Banned: c.Query("banned")}
	f := app.UserFilter{Query: d.Query}
	switch d.Banned {
	case "yes":
		t := true
		f.Banned = &t
	case "no":
		b := false
		f.Banned = &b
	}
	var err error
	if d.Users, d.Next, err = p.svc.ListUsers(c.UserContext(), f, pageOf(c)); err != nil {
		return p.fail(c, err)
	}
	return p.page(c, "users", "Users", d)
}

func (p *panel) createUser(c *fiber.Ctx) error {
	in := app.NewUser{Username: strings.TrimSpace(c.FormValue("username")), FirstName: strings.TrimSpace(c.FormValue("first_name")),
		Language: c.FormValue("language")}
	if tg := strings.TrimSpace(c.FormValue("telegram_id")); tg != "" {
		n, err := strconv.ParseInt(tg, 10, 64)
		if err != nil || n <= 0 {
			return p.fail(c, fmt.Errorf("telegram id %q: %w", tg, model.ErrInvalid))
		}
		in.TelegramID = n
	}
	u, err := p.svc.RegisterUser(c.UserContext(), p.actor(c), in)
	if err != nil {
		return p.fail(c, err)
	}
	p.flash(c, "User "+u.ID+" created.")
	return p.redirect(c, "/users/"+u.ID)
}

type userData struct {
	User    *app.UserView
	Keys    []model.Key
	Subs    []model.Subscription
	Credits []model.CreditEntry
	Plans   []model.Plan
	Idem    string // idempotency key of the credits form
}

func (p *panel) user(c *fiber.Ctx) error {
	ctx := c.UserContext()
	id := c.Params("id")
	u, err := p.svc.User(ctx, id)
	if err != nil {
		return p.fail(c, err)
	}
	d := userData{User: u}
	if d.Keys, _, err = p.svc.Keys(ctx, store.KeyFilter{UserID: id}, store.Page{Limit: pageSize}); err != nil {
		return p.fail(c, err)
	}
	if d.Subs, _, err = p.svc.Subscriptions(ctx, id, store.Page{Limit: pageSize}); err != nil {
		return p.fail(c, err)
	}
	if d.Credits, _, err = p.svc.CreditLedger(ctx, id, store.Page{Limit: pageSize}); err != nil {
		return p.fail(c, err)
	}
	if d.Plans, _, err = p.svc.Plans(ctx, store.Page{Limit: store.MaxLimit}); err != nil {
		return p.fail(c, err)
	}
	if d.Idem, err = randomToken(); err != nil {
		return err
	}
	return p.page(c, "user", "User "+u.ID, d)
}

func (p *panel) banUser(c *fiber.Ctx) error {
	id := c.Params("id")
	if err := p.svc.Ban(c.UserContext(), p.actor(c), id, strings.TrimSpace(c.FormValue("reason"))); err != nil {
		return p.fail(c, err)
	}
	p.flash(c, "User banned; their keys are off.")
	return p.redirect(c, "/users/"+id)
}

func (p *panel) unbanUser(c *fiber.Ctx) error {
	id := c.Params("id")
	if err := p.svc.Unban(c.UserContext(), p.actor(c), id); err != nil {
		return p.fail(c, err)
	}
	p.flash(c, "User unbanned.")
	return p.redirect(c, "/users/"+id)
}

func (p *panel) grantPlan(c *fiber.Ctx) error {
	id := c.Params("id")
	months, err1 := atoiOr(c.FormValue("months"), 0)
	days, err2 := atoiOr(c.FormValue("days"), 0)
	if err1 != nil || err2 != nil {
		return p.fail(c, fmt.Errorf("months and days must be numbers: %w", model.ErrInvalid))
	}
	sub, err := p.svc.GrantPlan(c.UserContext(), p.actor(c), id, c.FormValue("plan"), months, days)
	if err != nil {
		return p.fail(c, err)
	}
	p.flash(c, "Plan granted until "+sub.ExpiresAt.UTC().Format("2006-01-02 15:04")+" UTC.")
	return p.redirect(c, "/users/"+id)
}

// addCredits moves credits once per form: the form's idempotency key makes
// a resubmitted form a no-op.
func (p *panel) addCredits(c *fiber.Ctx) error {
	id := c.Params("id")
	amount, err := strconv.ParseInt(strings.TrimSpace(c.FormValue("amount")), 10, 64)
	if err != nil || amount == 0 {
		return p.fail(c, fmt.Errorf("amount must be a non-zero whole number: %w", model.ErrInvalid))
	}
	idem := c.FormValue("idem")
	if len(idem) < 16 || len(idem) > 64 {
		return p.fail(c, fmt.Errorf("the form lacks its idempotency key; reload it: %w", model.ErrInvalid))
	}
	bal, err := p.svc.AddCredits(c.UserContext(), p.actor(c), id, amount, strings.TrimSpace(c.FormValue("reason")),
		"panel:"+p.current(c).admin+":"+idem)
	if err != nil {
		return p.fail(c, err)
	}
	p.flash(c, fmt.Sprintf("Credits moved; the balance is %d.", bal))
	return p.redirect(c, "/users/"+id)
}

func atoiOr(s string, def int) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return def, nil
	}
	return strconv.Atoi(s)
}
