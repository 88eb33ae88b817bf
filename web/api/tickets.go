package api

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/store/model"
)

// ticketMessage and ticket are app's ticket views in the API's JSON shape.
type ticketMessage struct {
	From string    `json:"from"`
	Text string    `json:"text"`
	At   time.Time `json:"at"`
}

type ticket struct {
	ID       string             `json:"id"`
	UserID   string             `json:"user_id"`
	Version  uint64             `json:"version"`
	Status   model.TicketStatus `json:"status"`
	Subject  string             `json:"subject"`
	Messages []ticketMessage    `json:"messages"`
	Created  time.Time          `json:"created"`
	Updated  time.Time          `json:"updated"`
}

func ticketOf(v *app.TicketView) ticket {
	t := ticket{ID: v.ID, UserID: v.UserID, Version: v.Version, Status: v.Status, Subject: v.Subject,
		Messages: make([]ticketMessage, 0, len(v.Messages)), Created: v.Created, Updated: v.Updated}
	for _, m := range v.Messages {
		t.Messages = append(t.Messages, ticketMessage{From: m.From, Text: m.Text, At: m.At})
	}
	return t
}

func ticketStatus(s string) (model.TicketStatus, error) {
	switch st := model.TicketStatus(s); st {
	case "", model.TicketOpen, model.TicketClosed:
		return st, nil
	}
	return "", badRequest("status must be open or closed.")
}

func (a *api) listTickets(c *fiber.Ctx) error {
	p, err := page(c)
	if err != nil {
		return err
	}
	st, err := ticketStatus(c.Query("status"))
	if err != nil {
		return err
	}
	userID := c.Query("user_id")
	if userID != "" && !model.ValidID(userID) {
		return problemFor(invalid("user_id must be a user id"))
	}
	views, next, err := a.svc.Tickets(c.UserContext(), st, userID, p)
	if err != nil {
		return err
	}
	items := make([]ticket, 0, len(views))
	for i := range views {
		items = append(items, ticketOf(&views[i]))
	}
	return sendRead(c, listOf(items, next))
}

func (a *api) getTicket(c *fiber.Ctx) error {
	v, err := a.svc.Ticket(c.UserContext(), c.Params("id"))
	if err != nil {
		return err
	}
	return sendRead(c, ticketOf(v))
}

type openTicketRequest struct {
	UserID  string `json:"user_id"`
	Subject string `json:"subject,omitempty"`
	Text    string `json:"text"`
}

func (a *api) openTicket(c *fiber.Ctx) error {
	var in openTicketRequest
	if err := decodeBody(c, &in); err != nil {
		return err
	}
	v, err := a.svc.OpenTicket(c.UserContext(), principalOf(c).actor, in.UserID, in.Subject, in.Text)
	if err != nil {
		return err
	}
	return sendCreated(c, "/api/v1/tickets/"+v.ID, ticketOf(v))
}

type replyRequest struct {
	Text string `json:"text"`
	// AsUser relays a message written by the ticket's user (an integrator's
	// own support channel); otherwise the reply is the operator's.
	AsUser bool `json:"as_user,omitempty"`
}

// supportName is how an operator's reply is signed: the admin login, or
// the API key that wrote it.
func supportName(p *principal) string {
	if p.admin != "" {
		return "admin:" + p.admin
	}
	return "admin:" + p.id
}

func (a *api) replyTicket(c *fiber.Ctx) error {
	var in replyRequest
	if err := decodeBody(c, &in); err != nil {
		return err
	}
	p := principalOf(c)
	from := supportName(p)
	if in.AsUser {
		t, err := a.svc.Ticket(c.UserContext(), c.Params("id"))
		if err != nil {
			return err
		}
		from = t.UserID
	}
	v, err := a.svc.ReplyTicket(c.UserContext(), p.actor, c.Params("id"), from, in.Text)
	if err != nil {
		return err
	}
	return sendCreated(c, "", ticketOf(v))
}

func (a *api) closeTicket(c *fiber.Ctx) error  { return a.setTicketStatus(c, model.TicketClosed) }
func (a *api) reopenTicket(c *fiber.Ctx) error { return a.setTicketStatus(c, model.TicketOpen) }

func (a *api) setTicketStatus(c *fiber.Ctx, st model.TicketStatus) error {
	id := c.Params("id")
	if err := a.svc.SetTicketStatus(c.UserContext(), principalOf(c).actor, id, st); err != nil {
		return err
	}
	v, err := a.svc.Ticket(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(ticketOf(v))
}
