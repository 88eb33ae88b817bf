// Package api is usipipo's REST API under /api/v1: a thin adapter that
// authenticates a request, parses its input, calls one app.Service method
// and renders the result (DESIGN.md principle 1). No business rule lives
// here.
//
// Authentication (auth.go, jwt.go): an admin logs in with username,
// password and — when enrolled — a TOTP code, and gets a short-lived EdDSA
// access JWT and an opaque rotating refresh token; integrators send API
// keys (usp_…). Both travel as "Authorization: Bearer …". Scopes are
// ordered: admin implies write, write implies read; an admin login holds
// admin. Every route needs a scope except health, login, refresh, logout
// and the docs. A login with a one-time password (after init or a reset)
// gets a token good only for POST /api/v1/auth/password; the next refresh
// of that login is a full token.
// An admin login also enrols TOTP (totp.go). Each login family keeps the
// credential stamp its admin had when it logged in
// (app.Service.AdminStamp): after a change of the password or second
// factor, made here, in the panel or through the CLI, the family is
// refused, so a credential change ends every earlier login but the one
// that made it.
//
// Node-local state (limits.go, idempotency.go, refresh.go): rate limiters
// and the login back-off (package loginguard, shared with the panel) live
// in memory; refresh-token families and the
// responses of creating calls sent with an Idempotency-Key (for 24 hours)
// are also kept in node-local telemetry buckets, so logins, revocations and
// replays survive a restart. Failed logins go into the audit trail.
//
// Errors are RFC 9457 problem JSON rendered by web's one error handler;
// problems.go maps store/model's sentinel errors to stable type URIs.
package api

import (
	"context"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"log/slog"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/gofiber/fiber/v2"
	"golang.org/x/time/rate"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/app/pay"
	"github.com/usipipo/usipipo/store/keyring"
	"github.com/usipipo/usipipo/web/loginguard"
)

// Defaults of Options.
const (
	DefaultAccessTTL    = 15 * time.Minute
	DefaultRefreshTTL   = 7 * 24 * time.Hour
	DefaultKeyRate      = 200 // requests per second per API key or login
	DefaultIPRate       = 400 // requests per second per client address
	DefaultIdemWindow   = 24 * time.Hour
	DefaultIdemEntries  = 10000
	DefaultLoginFreeTry = loginguard.DefaultFree // failed logins before back-off starts
)

// Options configures Mount. Service is required.
type Options struct {
	Service *app.Service
	// SigningKey signs access JWTs (EdDSA). Nil: a random key per process,
	// so access tokens die with a restart (refresh tokens do anyway).
	SigningKey ed25519.PrivateKey
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger gets failed logins and refused tokens (default: discard).
	Logger *slog.Logger
	// Metrics gets the API's counters (default: a private set).
	Metrics *metrics.Set
	// Status reports the node's status for GET /api/v1/node/status
	// (default: the node name and the time).
	Status func(ctx context.Context) (any, error)
	// Pay refunds payments and reads and writes the catalogue and QvaPay
	// credentials; nil: those calls answer 503 (payment lists still work).
	Pay *pay.Service
	// Broadcaster sends broadcasts; nil: the broadcast calls answer 503.
	Broadcaster Broadcaster

	// Shared holds the login and idempotency state that every Mount of one
	// node must see alike (the --http and the public listener): pass the
	// same value to each. Nil: this Mount's own.
	Shared *Shared

	AccessTTL, RefreshTTL time.Duration
	// KeyRate and IPRate are the sustained request rates per credential
	// and per client address; bursts are twice as large. Zero: defaults;
	// negative: unlimited.
	KeyRate, IPRate rate.Limit
	// IdemWindow and IdemEntries bound the stored idempotent responses.
	IdemWindow  time.Duration
	IdemEntries int
	// LoginFreeTries failed logins per username and address are answered
	// at once; after that each needs a growing wait (1 s, 2 s, … 15 min).
	// See package loginguard.
	LoginFreeTries int
	// Logins is the node's failed-login back-off, to share with the panel
	// so that alternating between the two earns no extra tries. Nil: one
	// of the Shared state's own, with LoginFreeTries.
	Logins *loginguard.Guard
}

func (o *Options) defaults() error {
	if o.Service == nil {
		return errors.New("api: Options.Service is required")
	}
	if o.SigningKey == nil {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return err
		}
		o.SigningKey = priv
	}
	if len(o.SigningKey) != ed25519.PrivateKeySize {
		return errors.New("api: SigningKey is not an Ed25519 private key")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = metrics.NewSet()
	}
	if o.AccessTTL <= 0 {
		o.AccessTTL = DefaultAccessTTL
	}
	if o.RefreshTTL <= 0 {
		o.RefreshTTL = DefaultRefreshTTL
	}
	if o.KeyRate == 0 {
		o.KeyRate = DefaultKeyRate
	}
	if o.IPRate == 0 {
		o.IPRate = DefaultIPRate
	}
	if o.IdemWindow <= 0 {
		o.IdemWindow = DefaultIdemWindow
	}
	if o.IdemEntries <= 0 {
		o.IdemEntries = DefaultIdemEntries
	}
	if o.LoginFreeTries <= 0 {
		o.LoginFreeTries = DefaultLoginFreeTry
	}
	return nil
}

// SigningKeyFrom derives the access-token signing key from a node secret
// (for example the data key), so tokens survive a restart without storing
// another key: HKDF-SHA256 with a fixed label, then an Ed25519 seed.
func SigningKeyFrom(secret []byte) (ed25519.PrivateKey, error) {
	if len(secret) < 32 {
		return nil, errors.New("api: signing secret shorter than 32 bytes")
	}
	seed, err := hkdf.Key(sha256.New, secret, nil, "usipipo api access-token signing key v1", ed25519.SeedSize)
	if err != nil {
		return nil, err
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// api is the mounted API's state.
type api struct {
	svc     *app.Service
	o       Options
	log     *slog.Logger
	now     func() time.Time
	jwt     *signer
	refresh *refreshStore
	keyLim  *limiter
	ipLim   *limiter
	logins  *loginguard.Guard
	idem    *idemStore
	used    *lastUsed
	keys    *keyCache
	totp    *pendingTOTP
	m       apiMetrics
}

type apiMetrics struct {
	loginFailed, tokenRefused, rateLimited, idemReplayed, refreshReuse *metrics.Counter
}

// Mount installs the API, the OpenAPI document and the docs page on app.
// It returns an error for bad options, or when the refresh tokens and
// idempotency records persisted by an earlier run cannot be read.
func Mount(fa *fiber.App, o Options) error {
	if err := o.defaults(); err != nil {
		return err
	}
	if o.Shared == nil {
		o.Shared = NewShared()
	}
	sh, err := o.Shared.get(&o)
	if err != nil {
		return err
	}
	a := &api{svc: o.Service, o: o, log: o.Logger, now: o.Now,
		jwt:     newSigner(o.SigningKey, o.Now),
		refresh: sh.refresh,
		keyLim:  newLimiter(o.KeyRate, o.Now),
		ipLim:   newLimiter(o.IPRate, o.Now),
		logins:  sh.logins,
		idem:    sh.idem,
		totp:    sh.totp,
		keys:    newKeyCache(),
		used:    &lastUsed{st: o.Service.Store(), log: o.Logger, every: flushEvery},
		m: apiMetrics{
			loginFailed:  o.Metrics.GetOrCreateCounter(`usipipo_api_login_failures_total`),
			tokenRefused: o.Metrics.GetOrCreateCounter(`usipipo_api_auth_refused_total`),
			rateLimited:  o.Metrics.GetOrCreateCounter(`usipipo_api_rate_limited_total`),
			idemReplayed: o.Metrics.GetOrCreateCounter(`usipipo_api_idempotent_replays_total`),
			refreshReuse: o.Metrics.GetOrCreateCounter(`usipipo_api_refresh_reuse_total`),
		}}
	a.routes(fa)
	return nil
}

// idemKeyFrom derives the key that seals stored idempotent responses from
// the signing key: both survive a restart exactly when the signing key is
// derived from the node's data key (SigningKeyFrom).
func idemKeyFrom(signing ed25519.PrivateKey) (keyring.Key, error) {
	b, err := hkdf.Key(sha256.New, signing.Seed(), nil, "usipipo api idempotency records v1", 32)
	if err != nil {
		return keyring.Key{}, err
	}
	return keyring.Key(b), nil
}

// Scope requirements of routes; "" marks a public route.
const (
	public = ""
	read   = "read"
	write  = "write"
	admin  = "admin"
)

// route registers one endpoint: the per-address limit, authentication at
// scope, the per-credential limit, idempotency for creating calls, and the
// handler, whose errors are mapped to problems.
func (a *api) route(fa *fiber.App, method, path, scope string, creates bool, h fiber.Handler) {
	chain := []fiber.Handler{a.limitIP}
	if scope != public {
		chain = append(chain, a.authenticate(scope), a.limitKey)
	}
	if creates {
		chain = append(chain, a.idempotent)
	}
	chain = append(chain, func(c *fiber.Ctx) error { return problemFor(h(c)) })
	fa.Add(method, path, chain...)
}

func (a *api) routes(fa *fiber.App) {
	const v = "/api/v1"
	get, post, put, del := fiber.MethodGet, fiber.MethodPost, fiber.MethodPut, fiber.MethodDelete
	fa.Get("/api/openapi.json", serveSpec)
	fa.Get("/api/docs", serveDocs)
	fa.Get("/api/docs/docs.js", serveDocsJS)

	a.route(fa, get, v+"/health", public, false, a.health)
	a.route(fa, post, v+"/auth/login", public, false, a.login)
	a.route(fa, post, v+"/auth/refresh", public, false, a.refreshToken)
	a.route(fa, post, v+"/auth/logout", public, false, a.logout)
	a.route(fa, post, passwordPath, admin, false, a.changePassword)
	a.route(fa, get, v+"/auth/totp", admin, false, a.totpStatus)
	a.route(fa, post, v+"/auth/totp", admin, false, a.totpBegin)
	a.route(fa, post, v+"/auth/totp/confirm", admin, false, a.totpConfirm)
	a.route(fa, get, v+"/node/status", read, false, a.nodeStatus)

	a.route(fa, get, v+"/users", read, false, a.listUsers)
	a.route(fa, post, v+"/users", write, true, a.createUser)
	a.route(fa, get, v+"/users/:id", read, false, a.getUser)
	a.route(fa, del, v+"/users/:id", admin, false, a.eraseUser)
	a.route(fa, post, v+"/users/:id/ban", write, false, a.banUser)
	a.route(fa, post, v+"/users/:id/unban", write, false, a.unbanUser)
	a.route(fa, get, v+"/users/:id/export", admin, false, a.exportUser)
	a.route(fa, get, v+"/users/:id/balance", read, false, a.balance)
	a.route(fa, get, v+"/users/:id/credits", read, false, a.listCredits)
	a.route(fa, post, v+"/users/:id/credits", write, true, a.addCredits)
	a.route(fa, get, v+"/users/:id/referrals", read, false, a.referrals)
	a.route(fa, get, v+"/users/:id/subscriptions", read, false, a.listSubscriptions)
	a.route(fa, post, v+"/users/:id/subscriptions", write, true, a.grantPlan)

	a.route(fa, get, v+"/plans", read, false, a.listPlans)
	a.route(fa, post, v+"/plans", admin, true, a.createPlan)

	a.route(fa, get, v+"/keys", read, false, a.listKeys)
	a.route(fa, post, v+"/keys", write, true, a.createKey)
	a.route(fa, get, v+"/keys/:id", read, false, a.getKey)
	a.route(fa, get, v+"/keys/:id/config", read, false, a.keyConfig)
	a.route(fa, get, v+"/keys/:id/qr", read, false, a.keyQR)
	a.route(fa, post, v+"/keys/:id/rotate", write, false, a.rotateKey)
	a.route(fa, post, v+"/keys/:id/revoke", write, false, a.revokeKey)
	a.route(fa, post, v+"/vpn/create", write, true, a.vpnCreate)

	a.route(fa, get, v+"/proxies", read, false, a.listProxies)
	a.route(fa, post, v+"/proxies", write, true, a.createProxy)
	a.route(fa, get, v+"/proxies/free", read, false, a.freeProxies) // before :id, which would take "free"
	a.route(fa, get, v+"/proxies/:id", read, false, a.getProxy)
	a.route(fa, get, v+"/proxies/:id/link", read, false, a.proxyLink)
	a.route(fa, post, v+"/proxies/:id/revoke", write, false, a.revokeProxy)

	a.route(fa, get, v+"/apikeys", admin, false, a.listAPIKeys)
	a.route(fa, post, v+"/apikeys", admin, true, a.createAPIKey)
	a.route(fa, del, v+"/apikeys/:id", admin, false, a.revokeAPIKey)

	a.route(fa, get, v+"/audit", admin, false, a.listAudit)
	a.route(fa, get, v+"/stats", read, false, a.stats)

	a.route(fa, get, v+"/plans/:id", read, false, a.getPlan)
	a.route(fa, put, v+"/plans/:id", admin, false, a.updatePlan)

	a.route(fa, get, v+"/payments", admin, false, a.listPayments)
	a.route(fa, get, v+"/payments/:id", admin, false, a.getPayment)
	a.route(fa, post, v+"/payments/:id/refund", admin, false, a.refundPayment)

	a.route(fa, get, v+"/tickets", read, false, a.listTickets)
	a.route(fa, post, v+"/tickets", write, true, a.openTicket)
	a.route(fa, get, v+"/tickets/:id", read, false, a.getTicket)
	a.route(fa, post, v+"/tickets/:id/replies", write, true, a.replyTicket)
	a.route(fa, post, v+"/tickets/:id/close", write, false, a.closeTicket)
	a.route(fa, post, v+"/tickets/:id/reopen", write, false, a.reopenTicket)

	a.route(fa, post, v+"/broadcasts", admin, true, a.createBroadcast)
	a.route(fa, get, v+"/broadcasts/:id", admin, false, a.getBroadcast)

	a.route(fa, get, v+"/settings", admin, false, a.getSettings)
	a.route(fa, put, v+"/settings/policy", admin, false, a.putPolicy)
	a.route(fa, put, v+"/settings/catalogue", admin, false, a.putCatalogue)
	a.route(fa, put, v+"/settings/bot-token", admin, false, a.putBotToken)
	a.route(fa, put, v+"/settings/qvapay", admin, false, a.putQvaPay)
}
