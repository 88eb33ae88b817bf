package panel

import (
	"fmt"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

type keysData struct {
	UserID, Status string
	Keys           []model.Key
	Next           string
}

func (p *panel) keys(c *fiber.Ctx) error {
	d := keysData{UserID: strings.TrimSpace(c.Query("user")), Status: c.Query("status")}
	f := store.KeyFilter{UserID: d.UserID, Status: model.KeyStatus(d.Status)}
	if f.Status != "" && f.UserID == "" {
		return p.fail(c, fmt.Errorf("a status filter needs a user id: %w", model.ErrInvalid))
	}
	var err error
	if d.Keys, d.Next, err = p.svc.Keys(c.UserContext(), f, pageOf(c)); err != nil {
		return p.fail(c, err)
	}
	return p.page(c, "keys", "Keys", d)
}

// createKey issues a key for a user: within their plan, as their trial,
// or (the default in the panel) as an operator's grant.
func (p *panel) createKey(c *fiber.Ctx) error {
	r := app.KeyRequest{UserID: strings.TrimSpace(c.FormValue("user")), Type: model.KeyType(c.FormValue("type")),
		Name: strings.TrimSpace(c.FormValue("name"))}
	r.Trial, r.Admin = grantFrom(c)
	k, err := p.svc.CreateKey(c.UserContext(), p.actor(c), r)
	if err != nil {
		return p.fail(c, err)
	}
	p.flash(c, "Key "+k.ID+" created.")
	return p.redirect(c, "/keys/"+k.ID)
}

type keyData struct {
	Key    *model.Key
	Config *app.ClientConfig
}

func (p *panel) key(c *fiber.Ctx) error {
	k, err := p.svc.Key(c.UserContext(), c.Params("id"))
	if err != nil {
		return p.fail(c, err)
	}
	d := keyData{Key: k}
	if k.Status != model.KeyRevoked {
		if d.Config, err = p.svc.KeyConfig(c.UserContext(), k.ID); err != nil {
			return p.fail(c, err)
		}
	}
	return p.page(c, "key", "Key "+k.ID, d)
}

func (p *panel) keyQR(c *fiber.Ctx) error {
	k, err := p.svc.Key(c.UserContext(), c.Params("id"))
	if err != nil {
		return p.fail(c, err)
	}
	if k.Status == model.KeyRevoked {
		return p.fail(c, fmt.Errorf("key %s is revoked: %w", k.ID, model.ErrNotFound))
	}
	conf, err := p.svc.KeyConfig(c.UserContext(), k.ID)
	if err != nil {
		return p.fail(c, err)
	}
	return p.sendQR(c, conf, k.Version)
}

// grantFrom reads the form's grant: within the user's plan, as their trial,
// or (the panel's default) as an operator's grant.
func grantFrom(c *fiber.Ctx) (trial, admin bool) {
	switch c.FormValue("grant") {
	case "trial":
		return true, false
	case "plan":
		return false, false
	default:
		return false, true
	}
}

// sendQR answers with a credential's QR code, never cached: it is the
// credential itself.
func (p *panel) sendQR(c *fiber.Ctx, conf *app.ClientConfig, version uint64) error {
	png, err := p.svc.QR(c.UserContext(), conf, version)
	if err != nil {
		return p.fail(c, err)
	}
	c.Set(fiber.HeaderContentType, "image/png")
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Send(png)
}

func (p *panel) rotateKey(c *fiber.Ctx) error {
	k, err := p.svc.RotateKey(c.UserContext(), p.actor(c), c.Params("id"))
	if err != nil {
		return p.fail(c, err)
	}
	p.flash(c, "Key rotated: the old configuration no longer works.")
	return p.redirect(c, "/keys/"+k.ID)
}

func (p *panel) revokeKey(c *fiber.Ctx) error {
	id := c.Params("id")
	if err := p.svc.SetKeyStatus(c.UserContext(), p.actor(c), id, model.KeyRevoked, strings.TrimSpace(c.FormValue("reason"))); err != nil {
		return p.fail(c, err)
	}
	p.flash(c, "Key revoked.")
	return p.redirect(c, "/keys/"+id)
}
