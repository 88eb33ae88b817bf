package api

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/usipipo/usipipo/store/model"
)

// BroadcastSegment selects a broadcast's recipients; its fields combine,
// and the zero value is every user the bot can reach.
type BroadcastSegment struct {
	Language   string `json:"language,omitempty"`    // "es" or "en"
	ActiveOnly bool   `json:"active_only,omitempty"` // users with an active key or MTProto secret
	PlanID     string `json:"plan_id,omitempty"`     // users whose current plan this is
}

// BroadcastStatus is a broadcast and its progress.
type BroadcastStatus struct {
	ID       string           `json:"id"`
	Actor    string           `json:"actor"`
	State    string           `json:"state"` // "queued", "running", "done", "cancelled"
	Segment  BroadcastSegment `json:"segment"`
	Text     string           `json:"text"`
	Created  time.Time        `json:"created"`
	Finished time.Time        `json:"finished,omitzero"`
	Sent     int              `json:"sent"`
	Blocked  int              `json:"blocked"`   // recipients who blocked the bot
	Failed   int              `json:"failed"`    // refused for good
	InFlight int              `json:"in_flight"` // being sent
}

// Broadcaster sends a message to a segment of users in the background (the
// node adapts app/notify to it). Broadcast returns the new broadcast's id
// once it is durably queued; BroadcastStatus returns an error wrapping
// model.ErrNotFound for an unknown id. Both are called from request
// handlers and must not block on delivery.
type Broadcaster interface {
	Broadcast(ctx context.Context, actor string, seg BroadcastSegment, text string) (string, error)
	BroadcastStatus(ctx context.Context, id string) (*BroadcastStatus, error)
}

// ErrBroadcastsOff, wrapped in a Broadcaster's error, answers 503: the
// node cannot send broadcasts now (no Telegram bot).
var ErrBroadcastsOff = errors.New("broadcasts are not available on this node")

// MaxBroadcastText is Telegram's limit on a message's text, in characters.
const MaxBroadcastText = 4096

type broadcastRequest struct {
	Text    string           `json:"text"`
	Segment BroadcastSegment `json:"segment"`
}

func (a *api) createBroadcast(c *fiber.Ctx) error {
	if a.o.Broadcaster == nil {
		return unavailable("Broadcasts need the Telegram bot, which is not running on this node.")
	}
	var in broadcastRequest
	if err := decodeBody(c, &in); err != nil {
		return err
	}
	switch {
	case strings.TrimSpace(in.Text) == "" || utf8.RuneCountInString(in.Text) > MaxBroadcastText:
		return problemFor(invalid("text must hold 1 to 4096 characters"))
	case in.Segment.Language != "" && in.Segment.Language != "es" && in.Segment.Language != "en":
		return problemFor(invalid("segment.language must be es or en"))
	case in.Segment.PlanID != "" && !model.ValidID(in.Segment.PlanID):
		return problemFor(invalid("segment.plan_id must be a plan id"))
	}
	id, err := a.o.Broadcaster.Broadcast(c.UserContext(), string(principalOf(c).actor), in.Segment, in.Text)
	if errors.Is(err, ErrBroadcastsOff) {
		return unavailable("Broadcasts need the Telegram bot, which is not running on this node.")
	}
	if err != nil {
		return err
	}
	st, err := a.o.Broadcaster.BroadcastStatus(c.UserContext(), id)
	if err != nil {
		return err
	}
	c.Location("/api/v1/broadcasts/" + id)
	return c.Status(fiber.StatusAccepted).JSON(st)
}

func (a *api) getBroadcast(c *fiber.Ctx) error {
	if a.o.Broadcaster == nil {
		return unavailable("Broadcasts need the Telegram bot, which is not running on this node.")
	}
	st, err := a.o.Broadcaster.BroadcastStatus(c.UserContext(), c.Params("id"))
	if err != nil {
		return err
	}
	return sendRead(c, st) // polled: a 304 while nothing moved
}
