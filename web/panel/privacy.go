package panel

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/usipipo/usipipo/store/model"
)

// GDPR: the panel exports everything stored about a user and erases a
// user, through the same service methods as the API, the CLI and the
// bot's /privacy.

// exportUser sends the user's data as a JSON download, never cached.
func (p *panel) exportUser(c *fiber.Ctx) error {
	id := c.Params("id")
	out, err := p.svc.Export(c.UserContext(), id)
	if err != nil {
		return p.fail(c, err)
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="usipipo-user-`+fileSafe(id)+`.json"`)
	return c.Send(b)
}

// fileSafe keeps the letters, digits, '-' and '_' of s (ids are ULIDs; the
// path parameter is still the client's).
func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 128 && (r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return r
		}
		return -1
	}, s)
}

// eraseUser erases a user once the form repeats the user's id: the panel
// has no script to ask "are you sure?", and an erasure cannot be undone
// (keys revoked, personal data's key destroyed, payments kept anonymised).
func (p *panel) eraseUser(c *fiber.Ctx) error {
	id := c.Params("id")
	if strings.TrimSpace(c.FormValue("confirm")) != id {
		return p.fail(c, fmt.Errorf("type the user's id to confirm the erasure: %w", model.ErrInvalid))
	}
	if err := p.svc.Erase(c.UserContext(), p.actor(c), id); err != nil {
		return p.fail(c, err)
	}
	p.flash(c, "User erased: keys revoked, personal data destroyed, payments kept anonymised.")
	return p.redirect(c, "/users/"+id)
}
