package panel

import (
	"errors"
	"log/slog"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/usipipo/usipipo/store/model"
)

// CSP is the panel's Content-Security-Policy: scripts, styles, images and
// requests from the panel's own origin only; nothing inline, no eval, no
// plugins, no framing, and forms post only back to the panel.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Cookie names. With TLS the session cookie takes the __Host- prefix, which
// browsers accept only when Secure, on path /, without Domain.
const (
	cookieName    = "usipipo_panel"
	cookieNameTLS = "__Host-usipipo_panel"
	localSession  = "panel.session"
	csrfField     = "csrf"
	csrfHeader    = "X-CSRF-Token"
)

// headers sets the security headers on every panel response.
func (p *panel) headers(c *fiber.Ctx) error {
	h := &c.Response().Header
	h.Set(fiber.HeaderContentSecurityPolicy, CSP)
	h.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	// same-origin, not no-referrer: with no-referrer Chromium sends
	// "Origin: null" on form posts, which sameOrigin must refuse.
	h.Set(fiber.HeaderReferrerPolicy, "same-origin")
	h.Set(fiber.HeaderXFrameOptions, "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set(fiber.HeaderPermissionsPolicy, "camera=(), microphone=(), geolocation=(), payment=()")
	if p.o.TLS {
		h.Set(fiber.HeaderStrictTransportSecurity, "max-age=31536000")
	}
	return c.Next()
}

func (p *panel) cookieName() string {
	if p.o.TLS {
		return cookieNameTLS
	}
	return cookieName
}

func (p *panel) setCookie(c *fiber.Ctx, tok string, maxAge int) {
	c.Cookie(&fiber.Cookie{Name: p.cookieName(), Value: tok, Path: "/", MaxAge: maxAge,
		HTTPOnly: true, Secure: p.o.TLS, SameSite: fiber.CookieSameSiteStrictMode})
}

func (p *panel) clearCookie(c *fiber.Ctx) {
	c.Cookie(&fiber.Cookie{Name: p.cookieName(), Value: "", Path: "/", MaxAge: -1,
		HTTPOnly: true, Secure: p.o.TLS, SameSite: fiber.CookieSameSiteStrictMode})
}

// current is the request's session, or nil.
func (p *panel) current(c *fiber.Ctx) *session {
	if ss, ok := c.Locals(localSession).(*session); ok {
		return ss
	}
	ss := p.sess.get(c.Cookies(p.cookieName()))
	if ss != nil && ss.admin != "" && !p.stampHolds(c, ss) {
		return nil
	}
	if ss != nil {
		c.Locals(localSession, ss)
	}
	return ss
}

// stampHolds reports whether a logged-in session's login still has the
// credentials it logged in with; a session whose login changed its
// password or second factor since (here, through the API or the CLI, or on
// another node) or no longer exists is ended. One store read per request:
// the panel's traffic is an admin's clicks.
func (p *panel) stampHolds(c *fiber.Ctx, ss *session) bool {
	stamp, err := p.svc.AdminStamp(c.UserContext(), ss.admin)
	if err == nil && stamp == ss.stamp {
		return true
	}
	if err == nil || errors.Is(err, model.ErrNotFound) {
		// A failed delete leaves a record that is refused the same way.
		_ = p.sess.drop(ss.key)
		p.log.LogAttrs(c.UserContext(), slog.LevelInfo, "session_ended", slog.String("action", "panel.session"),
			slog.String("details", "username="+ss.admin+" reason=credentials_changed"), slog.String("ip", c.IP()))
	}
	return false
}

// anonymous makes sure the request has a session (an anonymous one for a
// login form), so that even the login form carries a CSRF token.
func (p *panel) anonymous(c *fiber.Ctx) error {
	if p.current(c) != nil {
		return c.Next()
	}
	ss, tok, err := p.sess.create("", false, "")
	if err != nil {
		return err
	}
	p.setCookie(c, tok, 0)
	c.Locals(localSession, ss)
	return c.Next()
}

// authed admits a request whose session belongs to a logged-in admin. A
// login with a one-time password reaches only the pages marked firstLogin.
func (p *panel) authed(firstLogin bool) fiber.Handler {
	return func(c *fiber.Ctx) error {
		ss := p.current(c)
		if ss == nil || ss.admin == "" {
			return p.redirect(c, "/login")
		}
		if ss.mustChange && !firstLogin {
			return p.redirect(c, "/password")
		}
		return c.Next()
	}
}

// redirect sends the browser elsewhere; an htmx request is told through
// HX-Redirect, since it follows 3xx answers inside the page.
func (p *panel) redirect(c *fiber.Ctx, to string) error {
	if c.Get("HX-Request") == "true" {
		c.Set("HX-Redirect", to)
		return c.SendStatus(fiber.StatusNoContent)
	}
	return c.Redirect(to, fiber.StatusSeeOther)
}

// csrf refuses a state-changing request without the session's token, or
// one that a browser says comes from another origin.
func (p *panel) csrf(c *fiber.Ctx) error {
	switch c.Method() {
	case fiber.MethodGet, fiber.MethodHead, fiber.MethodOptions:
		return c.Next()
	}
	ss := p.current(c)
	// Either carrier will do: htmx sends the header, a plain form the field.
	ok := ss != nil && (ss.validCSRF(c.Get(csrfHeader)) || ss.validCSRF(c.FormValue(csrfField)))
	if !ok || !p.sameOrigin(c) {
		return p.page(c.Status(fiber.StatusForbidden), "error", "Forbidden", errorData{
			Message: "This form has expired or did not come from this panel. Reload the page and try again."})
	}
	return c.Next()
}

// sameOrigin checks the Origin and Sec-Fetch-Site headers when present.
func (p *panel) sameOrigin(c *fiber.Ctx) bool {
	if site := c.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	origin := c.Get(fiber.HeaderOrigin)
	if origin == "" {
		return true
	}
	scheme := "http://"
	if p.o.TLS {
		scheme = "https://"
	}
	return strings.EqualFold(origin, scheme+c.Hostname())
}
