package panel

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/usipipo/usipipo/app/notify"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// broadcastsShown is how many recent broadcasts the page lists.
const broadcastsShown = 20

type broadcastData struct {
	On         bool
	Broadcasts []notify.BroadcastStatus
	Plans      []model.Plan
}

func (p *panel) broadcasts(c *fiber.Ctx) error {
	d := broadcastData{On: p.o.Notifier != nil}
	var err error
	if d.On {
		if d.Broadcasts, err = p.o.Notifier.Broadcasts(broadcastsShown); err != nil {
			return p.fail(c, err)
		}
	}
	if d.Plans, _, err = p.svc.Plans(c.UserContext(), store.Page{Limit: store.MaxLimit}); err != nil {
		return p.fail(c, err)
	}
	return p.page(c, "broadcast", "Broadcast", d)
}

// sendBroadcast queues a message to a segment of the users; the notifier
// sends it within Telegram's limits.
func (p *panel) sendBroadcast(c *fiber.Ctx) error {
	if p.o.Notifier == nil {
		return p.fail(c, fmt.Errorf("broadcasts need the Telegram bot (--bot-token): %w", model.ErrState))
	}
	seg := notify.Segment{Language: c.FormValue("language"), ActiveKey: c.FormValue("active_key") != "",
		PlanID: strings.TrimSpace(c.FormValue("plan"))}
	id, err := p.o.Notifier.Broadcast(c.UserContext(), string(p.actor(c)), seg, c.FormValue("text"))
	if errors.Is(err, notify.ErrNoTelegram) {
		return p.fail(c, fmt.Errorf("broadcasts need the Telegram bot (--bot-token): %w", model.ErrState))
	}
	if err != nil {
		return p.fail(c, err)
	}
	p.flash(c, "Broadcast "+id+" queued.")
	return p.redirect(c, "/broadcast")
}

func (p *panel) cancelBroadcast(c *fiber.Ctx) error {
	if p.o.Notifier == nil {
		return p.fail(c, fmt.Errorf("broadcasts are off: %w", model.ErrState))
	}
	err := p.o.Notifier.Cancel(c.UserContext(), string(p.actor(c)), c.Params("id"))
	if errors.Is(err, notify.ErrBroadcastOver) {
		err = fmt.Errorf("%w: %w", err, model.ErrState)
	}
	if err != nil {
		return p.fail(c, err)
	}
	p.flash(c, "Broadcast cancelled.")
	return p.redirect(c, "/broadcast")
}
