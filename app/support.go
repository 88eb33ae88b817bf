package app

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/cache"
	"github.com/usipipo/usipipo/store/keyring"
	"github.com/usipipo/usipipo/store/model"
)

// Support tickets. Subjects and message texts are personal data: they are
// sealed under the ticket owner's own key, so erasing the user makes them
// unreadable without rewriting the ticket (or the audit trail that carries
// the commands).

const (
	recTicketSubject = "ticket.subject"
	recTicketText    = "ticket.text"

	maxTicketSubject = 200
	maxTicketText    = 4000
	// ErasedText stands in for a message whose owner has been erased.
	ErasedText = "[erased]"
)

// TicketMessageView is one opened ticket message.
type TicketMessageView struct {
	From string    `json:"from"`
	Text string    `json:"text"`
	At   time.Time `json:"at"`
}

// TicketView is a ticket with its subject and messages opened.
type TicketView struct {
	ID       string              `json:"id"`
	UserID   string              `json:"user_id"`
	Version  uint64              `json:"version"`
	Status   model.TicketStatus  `json:"status"`
	Subject  string              `json:"subject"`
	Messages []TicketMessageView `json:"messages"`
	Created  time.Time           `json:"created"`
	Updated  time.Time           `json:"updated"`
}

func checkText(what, s string, max int, required bool) error {
	if required && strings.TrimSpace(s) == "" {
		return fmt.Errorf("%s is required: %w", what, model.ErrInvalid)
	}
	if len(s) > max || !utf8.ValidString(s) {
		return fmt.Errorf("%s must be valid UTF-8 of at most %d bytes: %w", what, max, model.ErrInvalid)
	}
	return nil
}

// OpenTicket starts a support ticket for userID with its first message.
func (s *Service) OpenTicket(ctx context.Context, a Actor, userID, subject, text string) (*TicketView, error) {
	return s.OpenTicketOnce(ctx, a, "", userID, subject, text)
}

// OpenTicketOnce is OpenTicket applied at most once per idempotency key
// (none when empty): a repeat returns the first ticket.
func (s *Service) OpenTicketOnce(ctx context.Context, a Actor, key, userID, subject, text string) (*TicketView, error) {
	if !model.ValidID(userID) {
		return nil, fmt.Errorf("user id %q: %w", userID, model.ErrInvalid)
	}
	if err := checkText("ticket subject", subject, maxTicketSubject, false); err != nil {
		return nil, err
	}
	if err := checkText("ticket text", text, maxTicketText, true); err != nil {
		return nil, err
	}
	uk, err := s.userKey(userID)
	if err != nil {
		return nil, s.ownerKeyErr(userID, err)
	}
	m := s.meta(a)
	id, err := s.newID(m.At)
	if err != nil {
		return nil, err
	}
	sub, err := keyring.Seal(uk, s.rand, recTicketSubject, id, []byte(subject))
	if err != nil {
		return nil, fmt.Errorf("sealing ticket subject: %w", err)
	}
	txt, err := keyring.Seal(uk, s.rand, recTicketText, id, []byte(text))
	if err != nil {
		return nil, fmt.Errorf("sealing ticket text: %w", err)
	}
	if err := s.do(ctx, m, store.OpenTicket{ID: id, UserID: userID, Subject: sub, Text: txt, Once: key}, userID); err != nil {
		return nil, err
	}
	if id, err = s.onceRef(key, id); err != nil {
		return nil, err
	}
	return s.Ticket(ctx, id)
}

// ownerKeyErr says why a ticket owner's key is unavailable: an unknown
// user, or an erased one, who can no longer have personal data written.
func (s *Service) ownerKeyErr(userID string, err error) error {
	if !errors.Is(err, model.ErrNotFound) {
		return fmt.Errorf("key of user %s: %w", userID, err)
	}
	if _, uerr := s.st.User(userID); uerr != nil {
		return uerr
	}
	return fmt.Errorf("user %s: %w", userID, model.ErrErased)
}

// ReplyTicket adds a message from `from` (the owner's user id or
// "admin:<id>") to a ticket. A reply to a closed ticket reopens it when the
// owner writes; an admin's reply to a closed ticket is refused.
func (s *Service) ReplyTicket(ctx context.Context, a Actor, ticketID, from, text string) (*TicketView, error) {
	return s.ReplyTicketOnce(ctx, a, "", ticketID, from, text)
}

// ReplyTicketOnce is ReplyTicket applied at most once per idempotency key
// (none when empty): a repeat adds no message.
func (s *Service) ReplyTicketOnce(ctx context.Context, a Actor, key, ticketID, from, text string) (*TicketView, error) {
	if err := checkText("ticket text", text, maxTicketText, true); err != nil {
		return nil, err
	}
	t, err := s.st.Ticket(ticketID)
	if err != nil {
		return nil, err
	}
	if from != t.UserID && (!strings.HasPrefix(from, "admin:") || len(from) == len("admin:") || len(from) > 80) {
		return nil, fmt.Errorf("reply author %q must be the ticket's user or admin:<id>: %w", from, model.ErrInvalid)
	}
	uk, err := s.userKey(t.UserID)
	if err != nil {
		return nil, s.ownerKeyErr(t.UserID, err)
	}
	sealed, err := keyring.Seal(uk, s.rand, recTicketText, t.ID, []byte(text))
	if err != nil {
		return nil, fmt.Errorf("sealing ticket text: %w", err)
	}
	cmd := store.ReplyTicket{TicketID: t.ID, From: from, Text: sealed, Once: key}
	if t.Status == model.TicketClosed && from == t.UserID {
		cmd.Status = model.TicketOpen
	}
	if err := s.do(ctx, s.meta(a), cmd, t.UserID); err != nil {
		return nil, err
	}
	return s.Ticket(ctx, t.ID)
}

// SetTicketStatus closes or reopens a ticket.
func (s *Service) SetTicketStatus(ctx context.Context, a Actor, ticketID string, st model.TicketStatus) error {
	if st != model.TicketOpen && st != model.TicketClosed {
		return fmt.Errorf("ticket status %q: %w", st, model.ErrInvalid)
	}
	t, err := s.st.Ticket(ticketID)
	if err != nil {
		return err
	}
	if t.Status == st {
		return nil
	}
	return s.do(ctx, s.meta(a), store.ReplyTicket{TicketID: t.ID, From: string(a), Status: st}, t.UserID)
}

// Ticket returns a ticket with its texts opened. Opening is cached by
// ticket id and version, so a reply (a new version) is never hidden.
func (s *Service) Ticket(ctx context.Context, id string) (*TicketView, error) {
	if !model.ValidID(id) {
		return nil, fmt.Errorf("ticket id %q: %w", id, model.ErrInvalid)
	}
	t, err := s.st.Ticket(id)
	if err != nil {
		return nil, err
	}
	return s.ticketView(ctx, t)
}

// Tickets lists a user's tickets (userID set) or the tickets with a status
// (open when empty), opened.
func (s *Service) Tickets(ctx context.Context, status model.TicketStatus, userID string, p store.Page) ([]TicketView, string, error) {
	if status == "" {
		status = model.TicketOpen
	}
	if status != model.TicketOpen && status != model.TicketClosed {
		return nil, "", fmt.Errorf("ticket status %q: %w", status, model.ErrInvalid)
	}
	ts, next, err := s.st.Tickets(status, userID, p)
	if err != nil {
		return nil, "", err
	}
	out := make([]TicketView, 0, len(ts))
	for i := range ts {
		v, err := s.ticketView(ctx, &ts[i])
		if err != nil {
			return nil, "", err
		}
		out = append(out, *v)
	}
	return out, next, nil
}

func (s *Service) ticketView(ctx context.Context, t *model.Ticket) (*TicketView, error) {
	// Erasure changes the owner's record, not the ticket's: the owner's
	// version is part of the key so an erased user's texts never outlive
	// their key in the cache.
	owner, err := s.st.User(t.UserID)
	if err != nil {
		return nil, fmt.Errorf("owner of ticket %s: %w", t.ID, err)
	}
	k := cache.Key{Kind: "ticket-view", ID: t.ID + "@" + strconv.FormatUint(owner.Version, 10), Version: t.Version}
	v, err := cache.GetOrCompute(ctx, s.cache, k, cache.Users, func() (*TicketView, int64, error) {
		v := s.openTicket(t)
		cost := int64(len(v.Subject)) + 128
		for _, m := range v.Messages {
			cost += int64(len(m.Text)+len(m.From)) + 48
		}
		return v, cost, nil
	})
	if err != nil {
		return nil, err
	}
	// A copy, so callers cannot change what the cache holds.
	c := *v
	c.Messages = append([]TicketMessageView(nil), v.Messages...)
	return &c, nil
}

// openTicket opens what it can: after erasure every text reads ErasedText.
func (s *Service) openTicket(t *model.Ticket) *TicketView {
	v := &TicketView{ID: t.ID, UserID: t.UserID, Version: t.Version, Status: t.Status,
		Created: t.Created, Updated: t.Updated, Messages: make([]TicketMessageView, 0, len(t.Messages))}
	uk, kerr := s.userKey(t.UserID)
	openText := func(rec string, b model.Sealed) string {
		if kerr != nil {
			return ErasedText
		}
		if len(b) == 0 {
			return ""
		}
		p, err := keyring.Open(uk, rec, t.ID, b)
		if err != nil {
			return ErasedText
		}
		return string(p)
	}
	v.Subject = openText(recTicketSubject, t.Subject)
	for _, m := range t.Messages {
		v.Messages = append(v.Messages, TicketMessageView{From: m.From, Text: openText(recTicketText, m.Text), At: m.At})
	}
	return v
}
