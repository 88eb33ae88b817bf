package store

import (
	"fmt"
	"time"

	"github.com/usipipo/usipipo/store/model"
)

// OpenTicket starts a support ticket with its first message.
type OpenTicket struct {
	ID      string       `json:"id"`
	UserID  string       `json:"user_id"`
	Subject model.Sealed `json:"subject"`
	Text    model.Sealed `json:"text"`
	// Once, when set, applies the command at most once per key (see bOnce).
	Once string `json:"once,omitempty"`
}

// Kind implements Command.
func (OpenTicket) Kind() string        { return "ticket.open/1" }
func (c OpenTicket) auditUser() string { return c.UserID }

func (c OpenTicket) plan(v *view, m Meta) (mutation, error) {
	return once(v, m, c.Once, c.ID, func() (mutation, error) { return c.planOnce(v, m) })
}

func (c OpenTicket) planOnce(v *view, m Meta) (mutation, error) {
	if !model.ValidID(c.ID) || len(c.Text) == 0 {
		return nil, fmt.Errorf("ticket id and text are required: %w", model.ErrInvalid)
	}
	if v.bucket(bTickets).Get(str(c.ID)) != nil {
		return nil, fmt.Errorf("ticket %s: %w", c.ID, model.ErrExists)
	}
	if _, err := liveUser(v, c.UserID); err != nil {
		return nil, err
	}
	return func(w *writer) error {
		t := &model.Ticket{ID: c.ID, UserID: c.UserID, Status: model.TicketOpen, Subject: c.Subject,
			Messages: []model.TicketMessage{{From: c.UserID, Text: c.Text, At: m.At}}, Created: m.At, Updated: m.At}
		return put(w, tickets, t)
	}, nil
}

// ReplyTicket adds a message to a ticket, or closes or reopens it.
type ReplyTicket struct {
	TicketID string             `json:"ticket_id"`
	From     string             `json:"from"`
	Text     model.Sealed       `json:"text,omitempty"`
	Status   model.TicketStatus `json:"status,omitempty"`
	// Once, when set, applies the command at most once per key (see bOnce).
	Once string `json:"once,omitempty"`
}

// Kind implements Command.
func (ReplyTicket) Kind() string { return "ticket.reply/1" }

func (c ReplyTicket) plan(v *view, m Meta) (mutation, error) {
	return once(v, m, c.Once, c.TicketID, func() (mutation, error) { return c.planOnce(v, m) })
}

func (c ReplyTicket) planOnce(v *view, m Meta) (mutation, error) {
	t, err := getByID(v, tickets, c.TicketID)
	if err != nil {
		return nil, fmt.Errorf("ticket %s: %w", c.TicketID, err)
	}
	if len(c.Text) == 0 && c.Status == "" {
		return nil, fmt.Errorf("a reply needs text or a status: %w", model.ErrInvalid)
	}
	if c.Status != "" && c.Status != model.TicketOpen && c.Status != model.TicketClosed {
		return nil, fmt.Errorf("ticket status %q: %w", c.Status, model.ErrInvalid)
	}
	if len(c.Text) > 0 && t.Status == model.TicketClosed && c.Status != model.TicketOpen {
		return nil, fmt.Errorf("ticket %s is closed: %w", t.ID, model.ErrState)
	}
	return func(w *writer) error {
		if len(c.Text) > 0 {
			t.Messages = append(t.Messages, model.TicketMessage{From: c.From, Text: c.Text, At: m.At})
		}
		if c.Status != "" {
			t.Status = c.Status
		}
		t.Updated = m.At
		return put(w, tickets, t)
	}, nil
}

// PutSetting stores a named setting as JSON.
type PutSetting struct {
	Name  string `json:"name"`
	Value []byte `json:"value"`
}

// Kind implements Command.
func (PutSetting) Kind() string { return "setting.put/1" }

func (c PutSetting) plan(v *view, m Meta) (mutation, error) {
	if c.Name == "" || len(c.Name) > 64 {
		return nil, fmt.Errorf("setting name: %w", model.ErrInvalid)
	}
	return func(w *writer) error {
		return put(w, settings, &model.Setting{Name: c.Name, Value: c.Value, Updated: m.At})
	}, nil
}

// CreateAPIKey stores an API key's hash; the token itself is never stored.
type CreateAPIKey struct {
	ID        string        `json:"id"`
	Name      string        `json:"name"`
	Scopes    []model.Scope `json:"scopes"`
	Hash      []byte        `json:"hash"`
	ExpiresAt time.Time     `json:"expires_at,omitzero"`
}

// Kind implements Command.
func (CreateAPIKey) Kind() string { return "apikey.create/1" }

func (c CreateAPIKey) plan(v *view, m Meta) (mutation, error) {
	if c.ID == "" || len(c.Hash) != 32 || len(c.Scopes) == 0 {
		return nil, fmt.Errorf("api key id, hash and scopes are required: %w", model.ErrInvalid)
	}
	for _, s := range c.Scopes {
		if s != model.ScopeRead && s != model.ScopeWrite && s != model.ScopeAdmin {
			return nil, fmt.Errorf("scope %q: %w", s, model.ErrInvalid)
		}
	}
	if v.bucket(bAPIKeys).Get(str(c.ID)) != nil {
		return nil, fmt.Errorf("api key %s: %w", c.ID, model.ErrExists)
	}
	return func(w *writer) error {
		return put(w, apiKeys, &model.APIKey{ID: c.ID, Name: c.Name, Scopes: c.Scopes, Hash: c.Hash,
			Created: m.At, ExpiresAt: c.ExpiresAt})
	}, nil
}

// RevokeAPIKey disables an API key for good.
type RevokeAPIKey struct {
	ID string `json:"id"`
}

// Kind implements Command.
func (RevokeAPIKey) Kind() string { return "apikey.revoke/1" }

func (c RevokeAPIKey) plan(v *view, m Meta) (mutation, error) {
	k, err := getByID(v, apiKeys, c.ID)
	if err != nil {
		return nil, fmt.Errorf("api key %s: %w", c.ID, err)
	}
	if k.Revoked {
		return nil, fmt.Errorf("api key %s is revoked: %w", c.ID, model.ErrState)
	}
	return func(w *writer) error {
		k.Revoked = true
		return put(w, apiKeys, k)
	}, nil
}

// PutAdmin creates a panel login or sets its password (a slow hash made
// before apply). MustChange asks for a new password at next login.
type PutAdmin struct {
	Username     string `json:"username"`
	PasswordHash string `json:"password_hash"`
	MustChange   bool   `json:"must_change,omitempty"`
}

// Kind implements Command.
func (PutAdmin) Kind() string { return "admin.put/1" }
func (c PutAdmin) redacted() any {
	c.PasswordHash = "[redacted]"
	return c
}

func (c PutAdmin) plan(v *view, m Meta) (mutation, error) {
	if c.Username == "" || c.PasswordHash == "" {
		return nil, fmt.Errorf("admin name and password hash are required: %w", model.ErrInvalid)
	}
	a, err := getByID(v, admins, c.Username)
	if err != nil {
		a = &model.Admin{Username: c.Username, Created: m.At}
	}
	return func(w *writer) error {
		a.PasswordHash, a.MustChange, a.Updated = c.PasswordHash, c.MustChange, m.At
		return put(w, admins, a)
	}, nil
}
