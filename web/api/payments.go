package api

import (
	"errors"

	"github.com/gofiber/fiber/v2"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/app/pay"
	"github.com/usipipo/usipipo/store/model"
	"github.com/usipipo/usipipo/web"
)

// unavailable is the 503 of a call whose collaborator this node lacks.
func unavailable(what string) error {
	return web.NewProblem(fiber.StatusServiceUnavailable, problemType("unavailable"), "Not available on this node", what)
}

func (a *api) listPayments(c *fiber.Ctx) error {
	p, err := page(c)
	if err != nil {
		return err
	}
	f := app.PaymentFilter{UserID: c.Query("user_id"), Status: model.PaymentStatus(c.Query("status")), Provider: c.Query("provider")}
	items, next, err := a.svc.Payments(c.UserContext(), f, p)
	if err != nil {
		return err
	}
	return sendRead(c, listOf(items, next))
}

func (a *api) getPayment(c *fiber.Ctx) error {
	p, err := a.svc.Payment(c.UserContext(), c.Params("id"))
	if err != nil {
		return err
	}
	return sendRead(c, p)
}

type refundRequest struct {
	// RefundID names a refund made outside the node (QvaPay by hand, a
	// chargeback); Stars payments are refunded through Telegram without one.
	RefundID string `json:"refund_id,omitempty"`
}

// refundPayment refunds a Stars payment through Telegram, or records a
// refund made elsewhere; either way the grant is reversed once.
func (a *api) refundPayment(c *fiber.Ctx) error {
	if a.o.Pay == nil {
		return unavailable("Payments are not running on this node.")
	}
	var in refundRequest
	if err := optionalBody(c, &in); err != nil {
		return err
	}
	p, err := a.svc.Payment(c.UserContext(), c.Params("id"))
	if err != nil {
		return err
	}
	actor := pay.Actor(principalOf(c).actor)
	switch {
	case in.RefundID != "":
		err = a.o.Pay.RecordRefund(c.UserContext(), actor, p.ID, in.RefundID)
	case p.Provider == pay.Stars:
		err = a.o.Pay.RefundStars(c.UserContext(), actor, p.ID)
	default:
		return problemFor(invalid("refund_id is required: only Stars payments are refunded by the node itself"))
	}
	var ae *pay.APIError
	switch {
	case errors.Is(err, pay.ErrNoProvider):
		return unavailable("The payment's provider is not configured on this node.")
	case errors.As(err, &ae):
		return web.NewProblem(fiber.StatusBadGateway, problemType("provider-error"), "Payment provider refused",
			truncate(ae.Provider+" "+ae.Method+": "+ae.Description, 200))
	}
	if err != nil {
		return err
	}
	out, err := a.svc.Payment(c.UserContext(), p.ID)
	if err != nil {
		return err
	}
	return c.JSON(out)
}
