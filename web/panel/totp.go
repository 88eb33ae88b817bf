package panel

import (
	"errors"

	"github.com/gofiber/fiber/v2"

	"github.com/usipipo/usipipo/app"
)

type totpData struct {
	Enrolled     bool
	RecoveryLeft int
	Pending      bool
	Secret       string
	Codes        []string
	Error        string
}

func (p *panel) totpData(c *fiber.Ctx) (totpData, error) {
	ss := p.current(c)
	enrolled, left, err := p.svc.TOTPStatus(c.UserContext(), ss.admin)
	return totpData{Enrolled: enrolled, RecoveryLeft: left, Pending: len(ss.pendingSeed) > 0, Secret: ss.pendingSecret}, err
}

func (p *panel) totpPage(c *fiber.Ctx) error {
	d, err := p.totpData(c)
	if err != nil {
		return p.fail(c, err)
	}
	return p.page(c, "totp", "Two-factor login", d)
}

// totpBegin makes a new seed and keeps it in the session until confirmed;
// the login's current factor stays in force meanwhile.
func (p *panel) totpBegin(c *fiber.Ctx) error {
	ss := p.current(c)
	e, err := p.svc.BeginTOTP(c.UserContext(), ss.admin)
	if err != nil {
		return p.fail(c, err)
	}
	p.sess.with(ss.key, func(s *session) { s.pendingSeed, s.pendingSecret, s.pendingQR = e.Seed, e.Secret, e.QR })
	return p.redirect(c, "/totp")
}

func (p *panel) totpQR(c *fiber.Ctx) error {
	ss := p.current(c)
	if len(ss.pendingQR) == 0 {
		return fiber.ErrNotFound
	}
	c.Set(fiber.HeaderContentType, "image/png")
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Send(ss.pendingQR)
}

// totpConfirm activates the pending seed after the password and a code
// from the authenticator app, shows the recovery codes once, and ends the
// login's other sessions.
func (p *panel) totpConfirm(c *fiber.Ctx) error {
	ss := p.current(c)
	d, err := p.totpData(c)
	if err != nil {
		return p.fail(c, err)
	}
	if !d.Pending {
		return p.redirect(c, "/totp")
	}
	if wait := p.guard.Check(c.IP(), ss.admin); wait > 0 {
		d.Error = "Too many wrong attempts; try again later."
		return p.page(c.Status(fiber.StatusTooManyRequests), "totp", "Two-factor login", d)
	}
	if _, err := p.svc.CheckAdminPassword(c.UserContext(), ss.admin, c.FormValue("password")); err != nil {
		p.guard.Fail(c.IP(), ss.admin)
		d.Error = "The password is wrong."
		return p.page(c.Status(fiber.StatusUnprocessableEntity), "totp", "Two-factor login", d)
	}
	codes, err := p.svc.ConfirmTOTP(c.UserContext(), app.PanelActor(ss.admin), ss.admin, ss.pendingSeed, c.FormValue("code"))
	if errors.Is(err, app.ErrWrongCode) {
		d.Error = "That code does not match; check the device's clock and try the next code."
		return p.page(c.Status(fiber.StatusUnprocessableEntity), "totp", "Two-factor login", d)
	}
	if err != nil {
		return p.fail(c, err)
	}
	p.sess.with(ss.key, func(s *session) { s.pendingSeed, s.pendingSecret, s.pendingQR = nil, "", nil })
	// A new second factor ends the login's other sessions, as a new
	// password does: they were opened with the old one.
	if err := p.keepAfterCredentialChange(c, ss); err != nil {
		return p.fail(c, err)
	}
	return p.page(c, "totp", "Two-factor login", totpData{Enrolled: true, RecoveryLeft: len(codes), Codes: codes})
}
