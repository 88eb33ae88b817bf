package api

import (
	"bytes"
	"context"
	"encoding/base32"
	"errors"
	"image/png"
	"strings"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/store"
)

// enrolTOTP gives the test admin a TOTP second factor and returns its seed
// and recovery codes.
func (ta *testAPI) enrolTOTP() ([]byte, []string) {
	ta.t.Helper()
	ctx := context.Background()
	e, err := ta.svc.BeginTOTP(ctx, "admin")
	if err != nil {
		ta.t.Fatal(err)
	}
	codes, err := ta.svc.ConfirmTOTP(ctx, app.ActorCLI, "admin", e.Seed, app.TOTPCode(e.Seed, ta.clock.Now().Unix()/30))
	if err != nil {
		ta.t.Fatal(err)
	}
	return e.Seed, codes
}

func (ta *testAPI) loginWith(code string) *resp {
	ta.t.Helper()
	return ta.do(req{method: "POST", path: "/api/v1/auth/login",
		body: loginRequest{Username: "admin", Password: ta.adminPassword, TOTP: code}})
}

func TestLoginRefusesReplayedTOTPCode(t *testing.T) {
	t.Parallel()
	ta := startAPI(t, func(o *Options) { o.LoginFreeTries = 100 })
	seed, _ := ta.enrolTOTP()
	ta.clock.Add(60e9) // past the step the enrolment used
	wantStatus(t, ta.loginWith(""), 401)
	code := app.TOTPCode(seed, ta.clock.Now().Unix()/30)
	wantStatus(t, ta.loginWith(code), 200)
	// The panel logs in through the same service method: the code is
	// spent there too.
	if _, err := ta.svc.LoginAdmin(context.Background(), app.PanelActor("admin"), "admin", ta.adminPassword, code); !errors.Is(err, app.ErrSecondFactor) {
		t.Fatalf("the API's code replayed through the panel's login: %v", err)
	}
	// The same code again, while the service would still accept it.
	r := ta.loginWith(code)
	wantStatus(t, r, 401)
	if r.problemType() != "unauthorized" {
		t.Fatalf("problem %q", r.problemType())
	}
	ta.clock.Add(30e9)
	if r := ta.loginWith(code); r.status != 401 { // one step later: still valid, still spent
		t.Fatalf("replay one step later: %d", r.status)
	}
	// The next step's code is fresh.
	wantStatus(t, ta.loginWith(app.TOTPCode(seed, ta.clock.Now().Unix()/30+1)), 200)
	// The refused replays are audited as second-factor failures.
	entries, _, err := ta.svc.Audit(context.Background(), store.AuditFilter{}, pageAll())
	if err != nil {
		t.Fatal(err)
	}
	second := 0
	for _, e := range entries {
		if e.Action == "auth.login_failed/1" && bytes.Contains(e.Command, []byte(`"second_factor":true`)) {
			second++
		}
	}
	if second != 3 { // the missing code and the two replays
		t.Fatalf("%d second-factor failures audited, want 3", second)
	}
}

func TestLoginAcceptsRecoveryCodeOnce(t *testing.T) {
	t.Parallel()
	ta := startAPI(t)
	_, codes := ta.enrolTOTP()
	r := ta.loginWith(codes[0])
	wantStatus(t, r, 200)
	var tok tokenResponse
	r.json(t, &tok)
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/users", token: tok.AccessToken}), 200)
	wantStatus(t, ta.loginWith(codes[0]), 401) // spent
	// Typed in capitals without separators, another code still works.
	wantStatus(t, ta.loginWith(strings.ToUpper(strings.ReplaceAll(codes[1], "-", ""))), 200)
	if _, left, err := ta.svc.TOTPStatus(context.Background(), "admin"); err != nil || left != app.RecoveryCodeCount-2 {
		t.Fatalf("recovery codes left %d, %v", left, err)
	}
	// A recovery code never stands in for the password.
	r = ta.do(req{method: "POST", path: "/api/v1/auth/login", body: loginRequest{Username: "admin", Password: "wrong-password", TOTP: codes[2]}})
	wantStatus(t, r, 401)
	if _, left, _ := ta.svc.TOTPStatus(context.Background(), "admin"); left != app.RecoveryCodeCount-2 {
		t.Fatalf("a wrong password spent a recovery code: %d left", left)
	}
}

// An admin enrols TOTP through the API: begin (seed, URI, QR), confirm
// with the password and a code, recovery codes once; the login's other
// logins end, its own goes on, and the next login needs the factor.
func TestTOTPEnrolmentThroughTheAPI(t *testing.T) {
	t.Parallel()
	ta := startAPI(t, func(o *Options) { o.LoginFreeTries = 100 })
	for _, path := range []string{"/api/v1/auth/totp", "/api/v1/auth/totp/confirm"} {
		r := ta.do(req{method: "POST", path: path, token: ta.tokens["admin"], body: totpConfirmRequest{}})
		if wantStatus(t, r, 403); r.problemType() != "admin-login-required" {
			t.Fatalf("%s with an API key: %s", path, r.problemType())
		}
	}
	mine, other := ta.login(), ta.login()
	status := func(tok tokenResponse) totpStatus {
		t.Helper()
		r := ta.do(req{method: "GET", path: "/api/v1/auth/totp", token: tok.AccessToken})
		wantStatus(t, r, 200)
		var st totpStatus
		r.json(t, &st)
		return st
	}
	if st := status(mine); st.Enrolled || st.Pending {
		t.Fatalf("before enrolment: %+v", st)
	}
	confirm := func(password, code string) *resp {
		return ta.do(req{method: "POST", path: "/api/v1/auth/totp/confirm", token: mine.AccessToken,
			body: totpConfirmRequest{Password: password, Code: code}})
	}
	wantStatus(t, confirm(ta.adminPassword, "123456"), 409) // nothing begun

	r := ta.do(req{method: "POST", path: "/api/v1/auth/totp", token: mine.AccessToken})
	wantStatus(t, r, 200)
	var e totpEnrolment
	r.json(t, &e)
	seed, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(e.Secret)
	if err != nil || !strings.HasPrefix(e.URI, "otpauth://totp/") || !strings.Contains(e.URI, "secret="+e.Secret) {
		t.Fatalf("enrolment %+v: %v", e, err)
	}
	if img, err := png.Decode(bytes.NewReader(e.QRPNG)); err != nil || img.Bounds().Dx() < 100 {
		t.Fatalf("QR code: %v", err)
	}
	if st := status(mine); st.Enrolled || !st.Pending {
		t.Fatalf("begun: %+v", st)
	}
	if st := status(other); st.Pending {
		t.Fatal("another login sees this login's begun enrolment")
	}
	code := func() string { return app.TOTPCode(seed, ta.clock.Now().Unix()/30) }
	if r := confirm("wrong password", code()); r.status != 403 || r.problemType() != "wrong-password" {
		t.Fatalf("wrong password: %d %s", r.status, r.problemType())
	}
	if r := confirm(ta.adminPassword, app.TOTPCode(seed, ta.clock.Now().Unix()/30+5)); r.status != 422 || r.problemType() != "wrong-code" {
		t.Fatalf("wrong code: %d %s", r.status, r.problemType())
	}
	if enrolled, _, _ := ta.svc.TOTPStatus(context.Background(), "admin"); enrolled {
		t.Fatal("enrolled before a right confirmation")
	}
	r = confirm(ta.adminPassword, code())
	wantStatus(t, r, 200)
	var rc recoveryCodes
	r.json(t, &rc)
	if len(rc.RecoveryCodes) != app.RecoveryCodeCount {
		t.Fatalf("recovery codes %v", rc.RecoveryCodes)
	}
	if st := status(mine); !st.Enrolled || st.Pending || st.RecoveryLeft != app.RecoveryCodeCount {
		t.Fatalf("after confirmation: %+v", st)
	}
	wantStatus(t, confirm(ta.adminPassword, code()), 409) // spent
	if !ta.works(mine) || ta.works(other) {
		t.Fatal("the enrolling login must go on, the other must end")
	}
	if _, ok := ta.refreshes(mine); !ok {
		t.Fatal("the enrolling login cannot refresh")
	}
	// The factor is in force: a password alone no longer logs in.
	wantStatus(t, ta.loginWith(""), 401)
	ta.clock.Add(30 * time.Second) // a new step: the confirming code is spent
	wantStatus(t, ta.loginWith(code()), 200)
	wantStatus(t, ta.loginWith(rc.RecoveryCodes[0]), 200)

	// A begun enrolment lasts pendingTTL.
	wantStatus(t, ta.do(req{method: "POST", path: "/api/v1/auth/totp", token: mine.AccessToken}), 200)
	ta.clock.Add(pendingTTL + time.Second)
	wantStatus(t, confirm(ta.adminPassword, code()), 409)
}
