// Package panel is usipipo's web panel at / on the --http listener:
// server-rendered html/template pages, progressively enhanced with htmx,
// and uPlot charts, every asset embedded (no CDN). Like the REST API it is
// a thin adapter over app.Service (DESIGN.md principle 1).
//
// Security (security.go): every response carries a strict CSP (no inline
// script or style), nosniff, no-referrer and frame-ancestors 'none'.
// Sessions live in memory (session.go), logged-in ones also in a
// node-local telemetry bucket by the SHA-256 of the cookie
// (session_store.go), behind an HttpOnly, SameSite=Strict
// cookie, Secure when the listener speaks TLS; every state-changing request
// needs the session's CSRF token (form field or X-CSRF-Token header) and,
// when the browser sends one, a same-origin Origin header. A login needs the
// password and, once enrolled, a TOTP code (each accepted code works once)
// or a recovery code; failures are slowed down (package loginguard, one
// table per node when the node passes the API's to Options.Logins) and
// written to the audit trail. A session keeps its admin's credential stamp
// (app.Service.AdminStamp) and ends once the admin's password or second
// factor changes, wherever the change was made; the session that made it
// stays.
package panel

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/app/notify"
	"github.com/usipipo/usipipo/app/pay"
	"github.com/usipipo/usipipo/web/loginguard"
)

// Options configures Mount. Service is required.
type Options struct {
	Service *app.Service
	// Payments refunds payments and stores QvaPay credentials; nil: those
	// actions are refused.
	Payments *pay.Service
	// Notifier sends broadcasts; nil: the broadcast page says they are off.
	Notifier *notify.Notifier
	// Status reports the node's live status for the dashboard.
	Status func(ctx context.Context) (any, error)
	// Logger gets failed logins (default: discard).
	Logger *slog.Logger
	// TLS: the listener speaks TLS, so cookies are Secure and HSTS is sent.
	TLS bool
	// Warning is shown on every page (for example: the panel is reachable
	// from the network without TLS).
	Warning string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Idle and Lifetime end sessions (defaults DefaultIdle, DefaultLifetime).
	Idle, Lifetime time.Duration
	// FreeTries failed logins per username and address are answered at
	// once (default DefaultFreeTries); see package loginguard.
	FreeTries int
	// Logins is the node's failed-login back-off, to share with the REST
	// API (api.Options.Logins). Nil: the panel's own, with FreeTries.
	Logins *loginguard.Guard
}

// DefaultFreeTries failed logins are answered at once.
const DefaultFreeTries = loginguard.DefaultFree

// panel is the mounted panel's state.
type panel struct {
	svc    *app.Service
	o      Options
	log    *slog.Logger
	now    func() time.Time
	sess   *sessions
	guard  *loginguard.Guard
	render *renderer
}

// Mount installs the panel's routes on fa. It returns an error for bad
// options or templates, or when the stored sessions cannot be read.
func Mount(fa *fiber.App, o Options) error {
	if o.Service == nil {
		return errors.New("panel: Options.Service is required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Idle <= 0 {
		o.Idle = DefaultIdle
	}
	if o.Lifetime <= 0 {
		o.Lifetime = DefaultLifetime
	}
	if o.FreeTries <= 0 {
		o.FreeTries = DefaultFreeTries
	}
	r, err := newRenderer()
	if err != nil {
		return err
	}
	sess := newSessions(o.Now, o.Idle, o.Lifetime)
	sess.st = o.Service.Store()
	if err := sess.load(); err != nil {
		return err
	}
	if o.Logins == nil {
		o.Logins = loginguard.New(o.FreeTries, o.Now)
	}
	p := &panel{svc: o.Service, o: o, log: o.Logger, now: o.Now, render: r, sess: sess, guard: o.Logins}
	p.routes(fa)
	return nil
}

func (p *panel) routes(fa *fiber.App) {
	fa.Get("/assets/:name", p.headers, serveAsset)

	pub := func(method, path string, h fiber.Handler) {
		fa.Add(method, path, p.headers, p.anonymous, p.csrf, h)
	}
	pub(fiber.MethodGet, "/login", p.loginPage)
	pub(fiber.MethodPost, "/login", p.login)
	pub(fiber.MethodPost, "/logout", p.logout)

	// Pages a login with a one-time password may use.
	first := func(method, path string, h fiber.Handler) {
		fa.Add(method, path, p.headers, p.authed(true), p.csrf, h)
	}
	first(fiber.MethodGet, "/password", p.passwordPage)
	first(fiber.MethodPost, "/password", p.changePassword)

	in := func(method, path string, h fiber.Handler) {
		fa.Add(method, path, p.headers, p.authed(false), p.csrf, h)
	}
	get, post := fiber.MethodGet, fiber.MethodPost
	in(get, "/", func(c *fiber.Ctx) error { return c.Redirect("/dashboard", fiber.StatusSeeOther) })
	in(get, "/dashboard", p.dashboard)
	in(get, "/dashboard/data", p.dashboardData)
	in(get, "/dashboard/status", p.statusFragment)

	in(get, "/totp", p.totpPage)
	in(post, "/totp/begin", p.totpBegin)
	in(get, "/totp/qr.png", p.totpQR)
	in(post, "/totp/confirm", p.totpConfirm)

	in(get, "/users", p.users)
	in(post, "/users", p.createUser)
	in(get, "/users/:id", p.user)
	in(post, "/users/:id/ban", p.banUser)
	in(post, "/users/:id/unban", p.unbanUser)
	in(post, "/users/:id/grant", p.grantPlan)
	in(post, "/users/:id/credits", p.addCredits)
	in(get, "/users/:id/export", p.exportUser)
	in(post, "/users/:id/erase", p.eraseUser)

	in(get, "/keys", p.keys)
	in(post, "/keys", p.createKey)
	in(get, "/keys/:id", p.key)
	in(get, "/keys/:id/qr.png", p.keyQR)
	in(post, "/keys/:id/rotate", p.rotateKey)
	in(post, "/keys/:id/revoke", p.revokeKey)

	in(get, "/proxies", p.proxies)
	in(post, "/proxies", p.createProxy)
	in(get, "/proxies/:id", p.proxy)
	in(get, "/proxies/:id/qr.png", p.proxyQR)
	in(post, "/proxies/:id/revoke", p.revokeProxy)

	in(get, "/audit", p.audit)

	in(get, "/payments", p.payments)
	in(post, "/payments/:id/refund", p.refund)

	in(get, "/tickets", p.tickets)
	in(get, "/tickets/:id", p.ticket)
	in(post, "/tickets/:id/reply", p.replyTicket)
	in(post, "/tickets/:id/status", p.setTicketStatus)

	in(get, "/broadcast", p.broadcasts)
	in(post, "/broadcast", p.sendBroadcast)
	in(post, "/broadcast/:id/cancel", p.cancelBroadcast)

	in(get, "/settings", p.settings)
	in(post, "/settings/policy", p.savePolicy)
	in(post, "/settings/plans", p.savePlan)
	in(post, "/settings/secrets", p.saveSecrets)

	in(get, "/apikeys", p.apiKeys)
	in(post, "/apikeys", p.createAPIKey)
	in(post, "/apikeys/:id/revoke", p.revokeAPIKey)
}
