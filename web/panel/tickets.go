package panel

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/store/model"
)

type ticketsData struct {
	Status, UserID string
	Tickets        []app.TicketView
	Next           string
}

// tickets lists open (or closed) tickets, or one user's.
func (p *panel) tickets(c *fiber.Ctx) error {
	d := ticketsData{Status: c.Query("status", string(model.TicketOpen)), UserID: strings.TrimSpace(c.Query("user"))}
	var err error
	if d.Tickets, d.Next, err = p.svc.Tickets(c.UserContext(), model.TicketStatus(d.Status), d.UserID, pageOf(c)); err != nil {
		return p.fail(c, err)
	}
	return p.page(c, "tickets", "Tickets", d)
}

func (p *panel) ticket(c *fiber.Ctx) error {
	t, err := p.svc.Ticket(c.UserContext(), c.Params("id"))
	if err != nil {
		return p.fail(c, err)
	}
	return p.page(c, "ticket", "Ticket "+t.ID, t)
}

// replyTicket answers a ticket as the logged-in admin.
func (p *panel) replyTicket(c *fiber.Ctx) error {
	a := p.actor(c)
	t, err := p.svc.ReplyTicket(c.UserContext(), a, c.Params("id"), string(a), c.FormValue("text"))
	if err != nil {
		return p.fail(c, err)
	}
	p.flash(c, "Reply sent.")
	return p.redirect(c, "/tickets/"+t.ID)
}

// setTicketStatus closes or reopens a ticket.
func (p *panel) setTicketStatus(c *fiber.Ctx) error {
	id := c.Params("id")
	st := model.TicketStatus(c.FormValue("status"))
	if err := p.svc.SetTicketStatus(c.UserContext(), p.actor(c), id, st); err != nil {
		return p.fail(c, err)
	}
	p.flash(c, "Ticket "+string(st)+".")
	return p.redirect(c, "/tickets/"+id)
}
