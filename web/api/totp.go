package api

import (
	"errors"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/web"
)

// TOTP enrolment for an admin login through the API, as the panel offers
// it: begin makes a seed and shows it (text, otpauth:// URI and QR code)
// without storing it; confirm, with the password and a code from the
// authenticator app, stores it and answers the recovery codes, once. Like
// a new password, a new second factor ends the login's other logins (its
// other refresh families and its panel sessions); the family that enrolled
// keeps going.

// pendingTTL is how long a begun enrolment waits for its confirmation.
const pendingTTL = 10 * time.Minute

// maxPending bounds the begun enrolments kept, one per refresh family.
const maxPending = 1000

// pendingTOTP holds begun enrolments by refresh family, in memory: a
// restart forgets them and the admin begins again.
type pendingTOTP struct {
	mu sync.Mutex
	m  map[string]pendingSeed // by family; guarded by mu
}

type pendingSeed struct {
	seed []byte
	exp  time.Time
}

func newPendingTOTP() *pendingTOTP { return &pendingTOTP{m: map[string]pendingSeed{}} }

func (p *pendingTOTP) put(fam string, seed []byte, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.m) >= maxPending {
		for k, v := range p.m {
			if !now.Before(v.exp) {
				delete(p.m, k)
			}
		}
		if len(p.m) >= maxPending { // all fresh: forget one rather than grow
			for k := range p.m {
				delete(p.m, k)
				break
			}
		}
	}
	p.m[fam] = pendingSeed{seed: seed, exp: now.Add(pendingTTL)}
}

func (p *pendingTOTP) get(fam string, now time.Time) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.m[fam]
	if !ok || !now.Before(v.exp) {
		delete(p.m, fam)
		return nil
	}
	return v.seed
}

func (p *pendingTOTP) drop(fam string) {
	p.mu.Lock()
	delete(p.m, fam)
	p.mu.Unlock()
}

// adminLogin is the caller's admin login, or a 403 for an API key.
func adminLogin(c *fiber.Ctx, what string) (*principal, error) {
	p := principalOf(c)
	if p.admin == "" {
		return nil, web.NewProblem(fiber.StatusForbidden, problemType("admin-login-required"), "Admin login required",
			"Only an admin login, not an API key, can "+what+".")
	}
	return p, nil
}

type totpStatus struct {
	Enrolled     bool `json:"enrolled"`
	RecoveryLeft int  `json:"recovery_left"`
	Pending      bool `json:"pending"`
}

func (a *api) totpStatus(c *fiber.Ctx) error {
	p, err := adminLogin(c, "read its second factor")
	if err != nil {
		return err
	}
	enrolled, left, err := a.svc.TOTPStatus(c.UserContext(), p.admin)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(totpStatus{Enrolled: enrolled, RecoveryLeft: left, Pending: a.totp.get(p.family, a.now()) != nil})
}

type totpEnrolment struct {
	Secret string `json:"secret"`
	URI    string `json:"uri"`
	QRPNG  []byte `json:"qr_png"` // base64 in JSON
	Expiry int64  `json:"expires_in"`
}

// totpBegin makes a new seed for the caller's login and keeps it until
// confirmed; the login's current factor stays in force meanwhile.
func (a *api) totpBegin(c *fiber.Ctx) error {
	p, err := adminLogin(c, "enrol a second factor")
	if err != nil {
		return err
	}
	e, err := a.svc.BeginTOTP(c.UserContext(), p.admin)
	if err != nil {
		return err
	}
	a.totp.put(p.family, e.Seed, a.now())
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(totpEnrolment{Secret: e.Secret, URI: e.URI, QRPNG: e.QR, Expiry: int64(pendingTTL / time.Second)})
}

type totpConfirmRequest struct {
	Password string `json:"password"`
	Code     string `json:"code"`
}

type recoveryCodes struct {
	RecoveryCodes []string `json:"recovery_codes"`
}

// totpConfirm activates the begun seed after the password and a code of
// it, answers the recovery codes once, and ends the login's other logins.
// Wrong passwords are slowed down like failed logins.
func (a *api) totpConfirm(c *fiber.Ctx) error {
	p, err := adminLogin(c, "enrol a second factor")
	if err != nil {
		return err
	}
	var in totpConfirmRequest
	if err := decodeBody(c, &in); err != nil {
		return err
	}
	seed := a.totp.get(p.family, a.now())
	if seed == nil {
		return web.NewProblem(fiber.StatusConflict, problemType("no-enrolment"), "No enrolment begun",
			"Begin with POST /api/v1/auth/totp (a begun enrolment lasts 10 minutes).")
	}
	if wait := a.logins.Check(c.IP(), p.admin); wait > 0 {
		return tooMany(c, wait, "Too many wrong passwords; try again later.")
	}
	if _, err := a.svc.CheckAdminPassword(c.UserContext(), p.admin, in.Password); err != nil {
		a.logins.Fail(c.IP(), p.admin) // guessing the password with a stolen token is slowed too
		return web.NewProblem(fiber.StatusForbidden, problemType("wrong-password"), "Wrong password", "The password is wrong.")
	}
	codes, err := a.svc.ConfirmTOTP(c.UserContext(), p.actor, p.admin, seed, in.Code)
	if errors.Is(err, app.ErrWrongCode) {
		return web.NewProblem(fiber.StatusUnprocessableEntity, problemType("wrong-code"), "Wrong code",
			"The code does not match the new seed: check the device's clock and try the next code.")
	}
	if err != nil {
		return err
	}
	a.totp.drop(p.family)
	if err := a.keepAfterCredentialChange(c, p); err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(recoveryCodes{RecoveryCodes: codes})
}

// keepAfterCredentialChange gives the family that changed its login's
// credentials the new stamp and revokes the login's other families at
// once (the stamp refuses them, and the login's panel sessions, anyway).
func (a *api) keepAfterCredentialChange(c *fiber.Ctx, p *principal) error {
	stamp, err := a.svc.AdminStamp(c.UserContext(), p.admin)
	if err != nil {
		return err
	}
	if err := a.refresh.restamp(p.family, stamp); err != nil {
		return err
	}
	return a.refresh.revokeSubject(p.admin, p.family)
}
