package panel

import (
	"errors"
	"log/slog"
	"math"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/web"
)

type loginData struct {
	Username string
	Error    string
}

func (p *panel) loginPage(c *fiber.Ctx) error {
	if ss := p.current(c); ss != nil && ss.admin != "" {
		return p.redirect(c, "/dashboard")
	}
	return p.page(c, "login", "Log in", loginData{})
}

// login checks the password and the second factor. Failures are slowed
// per address and username, logged and audited; a success replaces the
// login form's session with a new one (no session fixation).
func (p *panel) login(c *fiber.Ctx) error {
	user := strings.TrimSpace(c.FormValue("username"))
	pw, code := c.FormValue("password"), strings.TrimSpace(c.FormValue("code"))
	ip := c.IP()
	if wait := p.guard.Check(ip, user); wait > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		return p.page(c.Status(fiber.StatusTooManyRequests), "login", "Log in",
			loginData{Username: user, Error: "Too many failed logins. Wait " + wait.Round(1e9).String() + " and try again."})
	}
	// The stamp is read before the check: a credential change racing this
	// login leaves the session with the old stamp, refused, never with the
	// new one after the old password.
	stamp, _ := p.svc.AdminStamp(c.UserContext(), user)
	// LoginAdmin also refuses a TOTP code that already let someone in,
	// here or through the API.
	adm, err := p.svc.LoginAdmin(c.UserContext(), app.PanelActor(user), user, pw, code)
	if err != nil {
		if !errors.Is(err, app.ErrUnauthorized) {
			return p.fail(c, err)
		}
		second := errors.Is(err, app.ErrSecondFactor)
		p.guard.Fail(ip, user)
		p.log.LogAttrs(c.UserContext(), slog.LevelWarn, "login_failed", slog.String("action", "panel.login"),
			slog.String("details", "username="+truncate(user, 64)+" second_factor="+strconv.FormatBool(second)),
			slog.String("ip", ip), slog.String("request_id", web.RequestID(c)))
		if aerr := p.svc.RecordFailedLogin(c.UserContext(), app.LoginViaPanel, user, ip, second); aerr != nil {
			p.log.Error("login_audit_failed", "error", aerr.Error())
		}
		msg := "Wrong username or password."
		if second {
			msg = "A valid authenticator code (or recovery code) is required."
		}
		return p.page(c.Status(fiber.StatusUnauthorized), "login", "Log in", loginData{Username: user, Error: msg})
	}
	p.guard.Succeed(ip, user)
	if old := p.current(c); old != nil {
		if err := p.sess.drop(old.key); err != nil {
			return err
		}
	}
	ss, tok, err := p.sess.create(adm.Username, adm.MustChange, stamp)
	if err != nil {
		return err
	}
	p.setCookie(c, tok, 0)
	c.Locals(localSession, ss)
	p.log.LogAttrs(c.UserContext(), slog.LevelInfo, "login", slog.String("action", "panel.login"),
		slog.String("details", "username="+adm.Username), slog.String("ip", ip))
	if adm.MustChange {
		return p.redirect(c, "/password")
	}
	return p.redirect(c, "/dashboard")
}

func (p *panel) logout(c *fiber.Ctx) error {
	if ss := p.current(c); ss != nil {
		if err := p.sess.drop(ss.key); err != nil {
			return err // still logged in: say so rather than pretend
		}
	}
	p.clearCookie(c)
	return p.redirect(c, "/login")
}

type passwordData struct {
	MustChange bool
	Error      string
	Min        int
}

func (p *panel) passwordPage(c *fiber.Ctx) error {
	return p.page(c, "password", "Change password", passwordData{MustChange: p.current(c).mustChange, Min: app.MinAdminPassword})
}

// changePassword sets a new password and ends every other login of the
// admin: its other panel sessions here (and, through the credential stamp,
// anywhere else) and its API refresh families. The session making the
// change stays, as GitHub's or Django's do: it has just proved the current
// password and holds the new one, so ending it would add a login and no
// safety.
func (p *panel) changePassword(c *fiber.Ctx) error {
	ss := p.current(c)
	cur, next := c.FormValue("current"), c.FormValue("new")
	if next != c.FormValue("repeat") {
		return p.page(c.Status(fiber.StatusUnprocessableEntity), "password", "Change password",
			passwordData{MustChange: ss.mustChange, Error: "The new passwords differ.", Min: app.MinAdminPassword})
	}
	if wait := p.guard.Check(c.IP(), ss.admin); wait > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		return p.page(c.Status(fiber.StatusTooManyRequests), "password", "Change password",
			passwordData{MustChange: ss.mustChange, Error: "Too many wrong passwords; try again later.", Min: app.MinAdminPassword})
	}
	err := p.svc.ChangeAdminPassword(c.UserContext(), app.PanelActor(ss.admin), ss.admin, cur, next)
	if err != nil {
		msg := err.Error()
		if errors.Is(err, app.ErrUnauthorized) {
			p.guard.Fail(c.IP(), ss.admin) // guessing with a stolen session is slowed too
			msg = "The current password is wrong."
		}
		return p.page(c.Status(fiber.StatusUnprocessableEntity), "password", "Change password",
			passwordData{MustChange: ss.mustChange, Error: msg, Min: app.MinAdminPassword})
	}
	if err := p.keepAfterCredentialChange(c, ss); err != nil {
		return err
	}
	p.flash(c, "Password changed. Other sessions of "+ss.admin+" were logged out.")
	return p.redirect(c, "/dashboard")
}

// keepAfterCredentialChange gives the session that changed its login's
// credentials the new stamp and ends the login's other sessions at once
// (the stamp would refuse them on their next request anyway). A request of
// the same session racing the change may see the new stamp first and end
// this session too: the admin then logs in again with the new credentials.
func (p *panel) keepAfterCredentialChange(c *fiber.Ctx, ss *session) error {
	stamp, err := p.svc.AdminStamp(c.UserContext(), ss.admin)
	if err != nil {
		return err
	}
	if err := p.sess.credentialsChanged(ss.key, stamp); err != nil {
		return err
	}
	c.Locals(localSession, nil) // the cached copy holds the old stamp
	return p.sess.dropAdmin(ss.admin, ss.key)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
