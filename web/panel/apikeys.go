package panel

import (
	"fmt"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/usipipo/usipipo/store/model"
)

type apiKeysData struct {
	Keys  []model.APIKey
	Next  string
	Token string // a key just created: shown once, on this response only
	Name  string
}

func (p *panel) apiKeys(c *fiber.Ctx) error {
	var d apiKeysData
	var err error
	if d.Keys, d.Next, err = p.svc.APIKeys(c.UserContext(), pageOf(c)); err != nil {
		return p.fail(c, err)
	}
	return p.page(c, "apikeys", "API keys", d)
}

// createAPIKey makes a key and renders its token in this response only:
// it is not kept in the session, so a reload does not show it again.
func (p *panel) createAPIKey(c *fiber.Ctx) error {
	scope := model.Scope(c.FormValue("scope"))
	var expires time.Time
	if days, err := atoiOr(c.FormValue("days"), 0); err != nil || days < 0 || days > 3650 {
		return p.fail(c, fmt.Errorf("expiry must be 0 (never) to 3650 days: %w", model.ErrInvalid))
	} else if days > 0 {
		expires = p.now().Add(time.Duration(days) * 24 * time.Hour).UTC()
	}
	nk, err := p.svc.CreateAPIKey(c.UserContext(), p.actor(c), strings.TrimSpace(c.FormValue("name")), []model.Scope{scope}, expires)
	if err != nil {
		return p.fail(c, err)
	}
	d := apiKeysData{Token: nk.Token, Name: nk.Key.Name}
	if d.Keys, d.Next, err = p.svc.APIKeys(c.UserContext(), pageOf(c)); err != nil {
		return p.fail(c, err)
	}
	return p.page(c.Status(fiber.StatusCreated), "apikeys", "API keys", d)
}

func (p *panel) revokeAPIKey(c *fiber.Ctx) error {
	if err := p.svc.RevokeAPIKey(c.UserContext(), p.actor(c), c.Params("id")); err != nil {
		return p.fail(c, err)
	}
	p.flash(c, "API key revoked.")
	return p.redirect(c, "/apikeys")
}
