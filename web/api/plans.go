package api

import (
	"github.com/gofiber/fiber/v2"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

func (in planRequest) spec(id string) app.PlanSpec {
	spec := app.PlanSpec{ID: id, Name: in.Name, DurationDays: in.DurationDays, DataCapBytes: in.DataCapBytes,
		SpeedBps: in.SpeedBps, ThrottleBps: in.ThrottleBps, MaxKeys: in.MaxKeys, MaxConns: in.MaxConns,
		PriceStars: in.PriceStars, PriceUSDCents: in.PriceUSDCents, Inactive: in.Inactive}
	for _, p := range in.Protocols {
		spec.Protocols = append(spec.Protocols, keyType(p))
	}
	return spec
}

// planFilter reads the plan list's filters: active= (on sale or retired),
// name= (case-insensitive name prefix) and protocol= (plans that include it).
func planFilter(c *fiber.Ctx) (store.PlanFilter, error) {
	f := store.PlanFilter{NamePrefix: c.Query("name"), Protocol: model.KeyType(c.Query("protocol"))}
	if f.Protocol != "" && !f.Protocol.Valid() {
		return f, badRequest("protocol must be wireguard, outline or mtproto.")
	}
	var err error
	f.Active, err = boolQuery(c, "active")
	return f, err
}

func (a *api) getPlan(c *fiber.Ctx) error {
	id := c.Params("id")
	if !model.ValidID(id) {
		return problemFor(invalid("not a plan id"))
	}
	p, err := a.svc.Store().Plan(id)
	if err != nil {
		return err
	}
	return sendRead(c, p)
}

// updatePlan replaces an existing plan (prices, limits, or retiring it with
// inactive); subscriptions already sold keep what they were sold.
func (a *api) updatePlan(c *fiber.Ctx) error {
	var in planRequest
	if err := decodeBody(c, &in); err != nil {
		return err
	}
	id := c.Params("id")
	if !model.ValidID(id) {
		return problemFor(invalid("not a plan id"))
	}
	if _, err := a.svc.Store().Plan(id); err != nil {
		return err
	}
	plan, err := a.svc.PutPlan(c.UserContext(), principalOf(c).actor, in.spec(id))
	if err != nil {
		return err
	}
	return c.JSON(plan)
}
