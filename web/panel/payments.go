package panel

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/app/pay"
	"github.com/usipipo/usipipo/store/model"
)

type paymentsData struct {
	UserID, Status, Provider string
	Payments                 []model.Payment
	Next                     string
	CanRefund                bool
}

// payments lists payments, a user's newest first, filtered by status and
// provider.
func (p *panel) payments(c *fiber.Ctx) error {
	d := paymentsData{UserID: strings.TrimSpace(c.Query("user")), Status: c.Query("status"), Provider: c.Query("provider"),
		CanRefund: p.o.Payments != nil}
	f := app.PaymentFilter{UserID: d.UserID, Status: model.PaymentStatus(d.Status), Provider: d.Provider}
	var err error
	if d.Payments, d.Next, err = p.svc.Payments(c.UserContext(), f, pageOf(c)); err != nil {
		return p.fail(c, err)
	}
	return p.page(c, "payments", "Payments", d)
}

// refund refunds a paid payment and reverses what it bought: a Stars
// payment through Telegram, any other as a refund made outside the node
// (the form names it, so a repeated refund changes nothing).
func (p *panel) refund(c *fiber.Ctx) error {
	if p.o.Payments == nil {
		return p.fail(c, fmt.Errorf("payments are not configured on this node: %w", model.ErrState))
	}
	id := c.Params("id")
	pm, err := p.svc.Payment(c.UserContext(), id)
	if err != nil {
		return p.fail(c, err)
	}
	a := pay.Actor(p.actor(c))
	if pm.Provider == pay.Stars {
		err = p.o.Payments.RefundStars(c.UserContext(), a, id)
	} else {
		ref := strings.TrimSpace(c.FormValue("reference"))
		if ref == "" {
			return p.fail(c, fmt.Errorf("a refund of a %s payment needs the provider's refund reference: %w", pm.Provider, model.ErrInvalid))
		}
		err = p.o.Payments.RecordRefund(c.UserContext(), a, id, ref)
	}
	if errors.Is(err, pay.ErrNoProvider) {
		return p.fail(c, fmt.Errorf("the %s provider is not configured: %w", pm.Provider, model.ErrState))
	}
	if err != nil {
		return p.fail(c, err)
	}
	p.flash(c, "Payment "+id+" refunded.")
	return p.redirect(c, "/payments?user="+pm.UserID)
}
