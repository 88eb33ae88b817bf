package api

import (
	"context"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

func boolQuery(c *fiber.Ctx, name string) (*bool, error) {
	v := c.Query(name)
	if v == "" {
		return nil, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return nil, badRequest(name + " must be true or false.")
	}
	return &b, nil
}

func (a *api) listUsers(c *fiber.Ctx) error {
	p, err := page(c)
	if err != nil {
		return err
	}
	f := app.UserFilter{Query: c.Query("q")}
	if f.Banned, err = boolQuery(c, "banned"); err != nil {
		return err
	}
	if f.Erased, err = boolQuery(c, "erased"); err != nil {
		return err
	}
	items, next, err := a.svc.ListUsers(c.UserContext(), f, p)
	if err != nil {
		return err
	}
	return sendRead(c, listOf(items, next))
}

type createUserRequest struct {
	TelegramID   int64  `json:"telegram_id"`
	Username     string `json:"username,omitempty"`
	FirstName    string `json:"first_name,omitempty"`
	LastName     string `json:"last_name,omitempty"`
	Language     string `json:"language,omitempty"`
	ReferralCode string `json:"referral_code,omitempty"`
}

func (a *api) createUser(c *fiber.Ctx) error {
	var in createUserRequest
	if err := decodeBody(c, &in); err != nil {
		return err
	}
	u, err := a.svc.RegisterUser(c.UserContext(), principalOf(c).actor, app.NewUser{TelegramID: in.TelegramID,
		Username: in.Username, FirstName: in.FirstName, LastName: in.LastName, Language: in.Language,
		ReferralCode: in.ReferralCode})
	if err != nil {
		return err
	}
	return sendCreated(c, "/api/v1/users/"+u.ID, u)
}

func (a *api) getUser(c *fiber.Ctx) error {
	u, err := a.svc.CachedUser(c.UserContext(), c.Params("id"))
	if err != nil {
		return err
	}
	return sendRead(c, u)
}

func (a *api) eraseUser(c *fiber.Ctx) error {
	id := c.Params("id")
	if _, err := a.svc.User(c.UserContext(), id); err != nil {
		return err
	}
	if err := a.svc.Erase(c.UserContext(), principalOf(c).actor, id); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

type reasonRequest struct {
	Reason string `json:"reason,omitempty"`
}

// optionalBody decodes a body that may be empty.
func optionalBody(c *fiber.Ctx, v any) error {
	if len(c.Body()) == 0 {
		return nil
	}
	return decodeBody(c, v)
}

func (a *api) banUser(c *fiber.Ctx) error {
	var in reasonRequest
	if err := optionalBody(c, &in); err != nil {
		return err
	}
	id := c.Params("id")
	if _, err := a.svc.User(c.UserContext(), id); err != nil {
		return err
	}
	if err := a.svc.Ban(c.UserContext(), principalOf(c).actor, id, in.Reason); err != nil {
		return err
	}
	return a.userAfterWrite(c, id)
}

func (a *api) unbanUser(c *fiber.Ctx) error {
	id := c.Params("id")
	if _, err := a.svc.User(c.UserContext(), id); err != nil {
		return err
	}
	if err := a.svc.Unban(c.UserContext(), principalOf(c).actor, id); err != nil {
		return err
	}
	return a.userAfterWrite(c, id)
}

func (a *api) userAfterWrite(c *fiber.Ctx, id string) error {
	u, err := a.svc.User(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(u)
}

func (a *api) exportUser(c *fiber.Ctx) error {
	out, err := a.svc.Export(c.UserContext(), c.Params("id"))
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(out)
}

type balanceResponse struct {
	UserID  string `json:"user_id"`
	Balance int64  `json:"balance"`
}

func (a *api) balance(c *fiber.Ctx) error {
	id := c.Params("id")
	b, err := a.svc.Balance(c.UserContext(), id)
	if err != nil {
		return err
	}
	return sendRead(c, balanceResponse{UserID: id, Balance: b})
}

func (a *api) listCredits(c *fiber.Ctx) error { return userList(a, c, a.svc.CreditLedger) }

// userList pages one of a user's lists, after checking the user exists (an
// unknown user is a 404, not an empty list).
func userList[T any](a *api, c *fiber.Ctx, list func(context.Context, string, store.Page) ([]T, string, error)) error {
	p, err := page(c)
	if err != nil {
		return err
	}
	id := c.Params("id")
	if _, err := a.svc.User(c.UserContext(), id); err != nil {
		return err
	}
	items, next, err := list(c.UserContext(), id, p)
	if err != nil {
		return err
	}
	return sendRead(c, listOf(items, next))
}

type creditsRequest struct {
	Amount int64  `json:"amount"`
	Reason string `json:"reason"`
}

// addCredits moves credits. The Idempotency-Key header is required and is
// also the ledger entry's durable idempotency key in the store.
func (a *api) addCredits(c *fiber.Ctx) error {
	var in creditsRequest
	if err := decodeBody(c, &in); err != nil {
		return err
	}
	key := c.Get("Idempotency-Key")
	if key == "" {
		return badRequest("Moving credits needs an Idempotency-Key header.")
	}
	id := c.Params("id")
	p := principalOf(c)
	b, err := a.svc.AddCredits(c.UserContext(), p.actor, id, in.Amount, in.Reason, p.id+":"+key)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(balanceResponse{UserID: id, Balance: b})
}

func (a *api) referrals(c *fiber.Ctx) error {
	r, err := a.svc.Referrals(c.UserContext(), c.Params("id"))
	if err != nil {
		return err
	}
	return sendRead(c, r)
}

// listSubscriptions pages a user's subscriptions, filtered by status=
// (active, cancelled) and current= (grants its plan now).
func (a *api) listSubscriptions(c *fiber.Ctx) error {
	f := store.SubFilter{Status: model.SubStatus(c.Query("status"))}
	if f.Status != "" && f.Status != model.SubActive && f.Status != model.SubCancelled {
		return badRequest("status must be active or cancelled.")
	}
	var err error
	if f.Current, err = boolQuery(c, "current"); err != nil {
		return err
	}
	return userList(a, c, func(ctx context.Context, id string, p store.Page) ([]model.Subscription, string, error) {
		return a.svc.ListSubscriptions(ctx, id, f, p)
	})
}

type grantRequest struct {
	PlanID string `json:"plan_id"`
	Months int    `json:"months,omitempty"`
	Days   int    `json:"days,omitempty"`
}

func (a *api) grantPlan(c *fiber.Ctx) error {
	var in grantRequest
	if err := decodeBody(c, &in); err != nil {
		return err
	}
	sub, err := a.svc.GrantPlan(c.UserContext(), principalOf(c).actor, c.Params("id"), in.PlanID, in.Months, in.Days)
	if err != nil {
		return err
	}
	return sendCreated(c, "", sub)
}

func (a *api) listPlans(c *fiber.Ctx) error {
	p, err := page(c)
	if err != nil {
		return err
	}
	f, err := planFilter(c)
	if err != nil {
		return err
	}
	items, next, err := a.svc.ListPlans(c.UserContext(), f, p)
	if err != nil {
		return err
	}
	return sendRead(c, listOf(items, next))
}

type planRequest struct {
	Name          string   `json:"name"`
	DurationDays  int      `json:"duration_days"`
	DataCapBytes  uint64   `json:"data_cap_bytes,omitempty"`
	SpeedBps      uint64   `json:"speed_bps,omitempty"`
	ThrottleBps   uint64   `json:"throttle_bps,omitempty"`
	MaxKeys       int      `json:"max_keys"`
	MaxConns      int      `json:"max_conns,omitempty"`
	Protocols     []string `json:"protocols,omitempty"`
	PriceStars    int64    `json:"price_stars,omitempty"`
	PriceUSDCents int64    `json:"price_usd_cents,omitempty"`
	Inactive      bool     `json:"inactive,omitempty"`
}

func (a *api) createPlan(c *fiber.Ctx) error {
	var in planRequest
	if err := decodeBody(c, &in); err != nil {
		return err
	}
	plan, err := a.svc.PutPlan(c.UserContext(), principalOf(c).actor, in.spec(""))
	if err != nil {
		return err
	}
	return sendCreated(c, "", plan)
}

func (a *api) listAudit(c *fiber.Ctx) error {
	p, err := page(c)
	if err != nil {
		return err
	}
	items, next, err := a.svc.Audit(c.UserContext(), store.AuditFilter{UserID: c.Query("user_id"), Action: c.Query("action")}, p)
	if err != nil {
		return err
	}
	return sendRead(c, listOf(items, next))
}

type healthResponse struct {
	Status string    `json:"status"`
	Node   string    `json:"node"`
	Time   time.Time `json:"time"`
}

func (a *api) health(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(healthResponse{Status: "ok", Node: a.svc.Node(), Time: a.now().UTC()})
}

func (a *api) nodeStatus(c *fiber.Ctx) error {
	if a.o.Status == nil {
		return sendRead(c, map[string]any{"node": a.svc.Node(), "time": a.now().UTC()})
	}
	st, err := a.o.Status(c.UserContext())
	if err != nil {
		return err
	}
	return sendRead(c, st) // polled: a 304 while nothing changed
}
