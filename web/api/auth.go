package api

import (
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/store/keyring"
	"github.com/usipipo/usipipo/web"
)

// principal is who a request acts as.
type principal struct {
	id    string // "key:<api key id>" or "admin:<username>": rate limits and idempotency are per principal
	actor app.Actor
	rank  int // highest scope held
	// For admin logins: the username and the refresh family.
	admin, family string
}

const localPrincipal = "api.principal"

func principalOf(c *fiber.Ctx) *principal {
	p, _ := c.Locals(localPrincipal).(*principal)
	if p == nil {
		return &principal{id: "anonymous"}
	}
	return p
}

func scopeRank(s string) int {
	switch s {
	case read:
		return 1
	case write:
		return 2
	case admin:
		return 3
	}
	return 0
}

func unauthorized(c *fiber.Ctx, detail string) error {
	c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="usipipo"`)
	return web.NewProblem(fiber.StatusUnauthorized, problemType("unauthorized"), "Unauthorized", detail)
}

// authenticate admits a request whose bearer credential holds scope (or a
// higher one): an API key (usp_…) that is neither revoked nor expired, or a
// valid access JWT whose login family is still live and whose login still
// has the credentials it logged in with (one store read: admin logins are
// people, integrators use API keys).
func (a *api) authenticate(scope string) fiber.Handler {
	need := scopeRank(scope)
	return func(c *fiber.Ctx) error {
		auth := c.Get(fiber.HeaderAuthorization)
		tok, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok || tok == "" {
			a.m.tokenRefused.Inc()
			return unauthorized(c, "A bearer token is required.")
		}
		tok = strings.TrimSpace(tok)
		var p *principal
		if strings.HasPrefix(tok, keyring.TokenPrefix) {
			k, err := a.apiKey(c.UserContext(), tok)
			if err != nil {
				a.m.tokenRefused.Inc()
				return unauthorized(c, "The API key is unknown, revoked or expired.")
			}
			a.used.touch(k.ID, a.now())
			p = &principal{id: "key:" + k.ID, actor: app.APIActor(k.ID)}
			for _, s := range k.Scopes {
				p.rank = max(p.rank, scopeRank(string(s)))
			}
		} else {
			cl, err := a.jwt.verify(tok)
			if err != nil || !a.familyHolds(c, cl.Family, cl.Subject) {
				a.m.tokenRefused.Inc()
				return unauthorized(c, "The access token is invalid or expired.")
			}
			if cl.MustChange && c.Path() != passwordPath {
				return web.NewProblem(fiber.StatusForbidden, problemType("password-change-required"), "Password change required",
					"This login used a one-time password: change it at "+passwordPath+", then refresh the token.")
			}
			p = &principal{id: "admin:" + cl.Subject, actor: app.PanelActor(cl.Subject), rank: scopeRank(cl.Scope),
				admin: cl.Subject, family: cl.Family}
		}
		if p.rank < need {
			return web.NewProblem(fiber.StatusForbidden, problemType("insufficient-scope"), "Insufficient scope",
				"This call needs the "+scope+" scope.")
		}
		c.Locals(localPrincipal, p)
		return c.Next()
	}
}

// familyHolds reports whether access tokens of family fam, a login of
// subject, may be used: the family is live and the login's credentials
// have not changed since it logged in (here, in the panel, through the CLI
// or on another node). A stale family is only refused here, not revoked:
// the next refresh revokes it, and a password change through the API
// revokes the login's other families at once.
func (a *api) familyHolds(c *fiber.Ctx, fam, subject string) bool {
	stamp, ok := a.refresh.live(fam)
	if !ok {
		return false
	}
	now, err := a.svc.AdminStamp(c.UserContext(), subject)
	return err == nil && now == stamp
}

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	TOTP     string `json:"totp,omitempty"`
}

type tokenResponse struct {
	AccessToken  string    `json:"access_token"`
	TokenType    string    `json:"token_type"`
	ExpiresIn    int64     `json:"expires_in"`
	ExpiresAt    time.Time `json:"expires_at"`
	RefreshToken string    `json:"refresh_token"`
	MustChange   bool      `json:"must_change_password,omitempty"`
}

// login checks an admin's password and, when enrolled, a TOTP code (the
// service refuses a code that already let someone in, here or in the
// panel) or a recovery code (spent by using it), and starts a refresh
// family. Failures are slowed per address and username,
// counted, and logged with the seed's fields.
func (a *api) login(c *fiber.Ctx) error {
	var in loginRequest
	if err := decodeBody(c, &in); err != nil {
		return err
	}
	ip := c.IP()
	if wait := a.logins.Check(ip, in.Username); wait > 0 {
		a.m.rateLimited.Inc()
		return tooMany(c, wait, "Too many failed logins; try again later.")
	}
	// The stamp is read before the check: a credential change racing this
	// login leaves the family with the old stamp, refused, never with the
	// new one after the old password.
	stamp, _ := a.svc.AdminStamp(c.UserContext(), in.Username)
	adm, err := a.svc.LoginAdmin(c.UserContext(), app.PanelActor(in.Username), in.Username, in.Password, in.TOTP)
	if err != nil {
		if !errors.Is(err, app.ErrUnauthorized) {
			return err
		}
		a.logins.Fail(ip, in.Username)
		a.m.loginFailed.Inc()
		secondFactor := errors.Is(err, app.ErrSecondFactor)
		a.log.LogAttrs(c.UserContext(), slog.LevelWarn, "login_failed", slog.String("action", "auth.login"),
			slog.String("details", "username="+truncate(in.Username, 64)+" second_factor="+boolText(secondFactor)),
			slog.String("ip", ip), slog.String("request_id", web.RequestID(c)))
		// Into the audit trail too. The back-off above bounds how many of
		// these writes a guesser can cause; a failed write does not change
		// the answer.
		if aerr := a.svc.RecordFailedLogin(c.UserContext(), app.LoginViaAPI, in.Username, ip, secondFactor); aerr != nil {
			a.log.LogAttrs(c.UserContext(), slog.LevelError, "login_audit_failed", slog.String("action", "auth.login"),
				slog.String("details", aerr.Error()))
		}
		if errors.Is(err, app.ErrSecondFactor) {
			return unauthorized(c, "A valid, unused TOTP code (or a recovery code) is required.")
		}
		return unauthorized(c, "Wrong username or password.")
	}
	a.logins.Succeed(ip, in.Username)
	a.log.LogAttrs(c.UserContext(), slog.LevelInfo, "login", slog.String("action", "auth.login"),
		slog.String("details", "username="+adm.Username), slog.String("ip", ip))
	fam, refresh, err := a.refresh.start(adm.Username, stamp, a.o.RefreshTTL)
	if err != nil {
		return err
	}
	return a.issue(c, adm.Username, fam, refresh, adm.MustChange)
}

// passwordPath is the one route a login with a one-time password may use.
const passwordPath = "/api/v1/auth/password"

func (a *api) issue(c *fiber.Ctx, subject, fam, refresh string, mustChange bool) error {
	access, exp, err := a.jwt.sign(subject, admin, fam, mustChange, a.o.AccessTTL)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(tokenResponse{AccessToken: access, TokenType: "Bearer", ExpiresIn: int64(a.o.AccessTTL / time.Second),
		ExpiresAt: exp.UTC(), RefreshToken: refresh, MustChange: mustChange})
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

// refreshToken trades a refresh token for a new access token and the next
// refresh token of the family. A token used twice revokes its family, and
// so does a login whose credentials changed since it logged in.
func (a *api) refreshToken(c *fiber.Ctx) error {
	var in refreshRequest
	if err := decodeBody(c, &in); err != nil {
		return err
	}
	rot, ok, err := a.refresh.rotate(in.RefreshToken)
	if err != nil {
		return err
	}
	if rot.reused {
		a.m.refreshReuse.Inc()
		a.log.LogAttrs(c.UserContext(), slog.LevelWarn, "refresh_token_reused", slog.String("action", "auth.refresh"),
			slog.String("details", "family revoked; username="+rot.subject), slog.String("ip", c.IP()))
	}
	if !ok {
		a.m.tokenRefused.Inc()
		return unauthorized(c, "The refresh token is invalid, expired or already used.")
	}
	adm, err := a.svc.Store().Admin(rot.subject) // the login may have changed its password since
	if err != nil {
		if _, rerr := a.refresh.revoke(rot.next); rerr != nil {
			return rerr
		}
		return unauthorized(c, "The login no longer exists.")
	}
	if stamp, err := a.svc.AdminStamp(c.UserContext(), rot.subject); err != nil || stamp != rot.stamp {
		if _, rerr := a.refresh.revoke(rot.next); rerr != nil {
			return rerr
		}
		return unauthorized(c, "The login's password or second factor changed since this login: log in again.")
	}
	return a.issue(c, rot.subject, rot.family, rot.next, adm.MustChange)
}

// logout revokes the refresh token's family and its access tokens.
func (a *api) logout(c *fiber.Ctx) error {
	var in refreshRequest
	if err := decodeBody(c, &in); err != nil {
		return err
	}
	known, err := a.refresh.revoke(in.RefreshToken)
	if err != nil {
		return err
	}
	if !known {
		return unauthorized(c, "The refresh token is unknown.")
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

type passwordRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

// changePassword sets the logged-in admin's password and ends every other
// login of that admin: its other refresh families at once and, through the
// credential stamp, its panel sessions. The login making the change keeps
// its family, as GitHub's or Django's do: it has just proved the current
// password and holds the new one, so ending it would add a login and no
// safety. API keys cannot call it (they are no admin's login, and a
// password change leaves them alone: revoke them apart).
func (a *api) changePassword(c *fiber.Ctx) error {
	p, err := adminLogin(c, "change its password")
	if err != nil {
		return err
	}
	var in passwordRequest
	if err := decodeBody(c, &in); err != nil {
		return err
	}
	if wait := a.logins.Check(c.IP(), p.admin); wait > 0 {
		return tooMany(c, wait, "Too many wrong passwords; try again later.")
	}
	if err := a.svc.ChangeAdminPassword(c.UserContext(), p.actor, p.admin, in.CurrentPassword, in.NewPassword); err != nil {
		if errors.Is(err, app.ErrUnauthorized) {
			a.logins.Fail(c.IP(), p.admin) // guessing the password with a stolen token is slowed too
			return web.NewProblem(fiber.StatusForbidden, problemType("wrong-password"), "Wrong password",
				"The current password is wrong.")
		}
		return err
	}
	if err := a.keepAfterCredentialChange(c, p); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}
