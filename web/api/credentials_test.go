package api

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/usipipo/usipipo/app"
	adminsock "github.com/usipipo/usipipo/app/admin"
	"github.com/usipipo/usipipo/web"
	"github.com/usipipo/usipipo/web/panel"
	"github.com/usipipo/usipipo/web/webtest"
)

// A change of an admin's password or second factor, made through the
// API, the panel or the CLI (the admin socket), ends every login of that
// admin made before it: API refresh families and their access tokens, and
// panel sessions. The API or panel login that made the change stays.

// browser is a panel client: cookie jar, redirects not followed.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

// startPanel mounts the panel over ta's service on a listener of its own.
func (ta *testAPI) startPanel() string {
	t := ta.t
	srv, err := web.New(web.Options{Logger: slog.New(slog.DiscardHandler), Metrics: metrics.NewSet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := panel.Mount(srv.App(), panel.Options{Service: ta.svc, Now: ta.clock.Now}); err != nil {
		t.Fatal(err)
	}
	return webtest.Serve(t, srv)
}

func newBrowser(t *testing.T, base string) *browser {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: testHTTPTimeout, Transport: &http.Transport{},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	t.Cleanup(c.CloseIdleConnections)
	return &browser{t: t, base: base, c: c}
}

var csrfMeta = regexp.MustCompile(`name="csrf-token" content="([^"]*)"`)

func (b *browser) get(path string) (int, string) {
	b.t.Helper()
	res, err := b.c.Get(b.base + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

// post submits a form from page (for its CSRF token) as a browser would.
func (b *browser) post(page, path string, form url.Values) (int, string) {
	b.t.Helper()
	_, body := b.get(page)
	m := csrfMeta.FindStringSubmatch(body)
	if m == nil {
		b.t.Fatalf("no CSRF token on %s: %.300s", page, body)
	}
	form.Set("csrf", m[1])
	req, _ := http.NewRequest("POST", b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.base)
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	rb, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header.Get("Location") + string(rb)
}

func (b *browser) login(password, code string) {
	b.t.Helper()
	st, body := b.post("/login", "/login", url.Values{"username": {"admin"}, "password": {password}, "code": {code}})
	if st != http.StatusSeeOther || !strings.HasPrefix(body, "/dashboard") {
		b.t.Fatalf("panel login: %d %.300s", st, body)
	}
}

// loggedIn reports whether the browser's session still reaches a page.
func (b *browser) loggedIn() bool {
	b.t.Helper()
	st, _ := b.get("/users")
	if st != http.StatusOK && st != http.StatusSeeOther {
		b.t.Fatalf("GET /users: %d", st)
	}
	return st == http.StatusOK
}

// apiLogin logs the admin in through the API with an optional TOTP code.
func (ta *testAPI) apiLogin(password, code string) tokenResponse {
	ta.t.Helper()
	r := ta.do(req{method: "POST", path: "/api/v1/auth/login", body: loginRequest{Username: "admin", Password: password, TOTP: code}})
	wantStatus(ta.t, r, 200)
	var tok tokenResponse
	r.json(ta.t, &tok)
	return tok
}

// works reports whether the login's access token is accepted; refreshes
// reports whether its refresh token is (which spends it).
func (ta *testAPI) works(tok tokenResponse) bool {
	ta.t.Helper()
	r := ta.do(req{method: "GET", path: "/api/v1/plans", token: tok.AccessToken})
	if r.status != 200 && r.status != 401 {
		ta.t.Fatalf("GET /api/v1/plans: %d %s", r.status, r.body)
	}
	return r.status == 200
}

func (ta *testAPI) refreshes(tok tokenResponse) (tokenResponse, bool) {
	ta.t.Helper()
	r := ta.do(req{method: "POST", path: "/api/v1/auth/refresh", body: refreshRequest{tok.RefreshToken}})
	if r.status != 200 {
		wantStatus(ta.t, r, 401)
		return tokenResponse{}, false
	}
	var next tokenResponse
	r.json(ta.t, &next)
	return next, true
}

// adminSocket serves the CLI's admin socket over ta's service.
func (ta *testAPI) adminSocket() *adminsock.Client {
	sock := filepath.Join(ta.t.TempDir(), "admin.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		ta.t.Fatal(err)
	}
	srv := adminsock.NewServer(ta.svc, nil, nil)
	done := make(chan struct{})
	go func() { srv.Serve(context.Background(), ln); close(done) }()
	ta.t.Cleanup(func() { ln.Close(); srv.Shutdown(context.Background()); <-done })
	return adminsock.NewClient(sock)
}

const newAdminPassword = "another long admin password"

func TestAPIPasswordChangeEndsOtherLogins(t *testing.T) {
	t.Parallel()
	ta := startAPI(t)
	b := newBrowser(t, ta.startPanel())
	b.login(ta.adminPassword, "")
	mine, other := ta.apiLogin(ta.adminPassword, ""), ta.apiLogin(ta.adminPassword, "")

	wantStatus(t, ta.do(req{method: "POST", path: passwordPath, token: mine.AccessToken,
		body: passwordRequest{CurrentPassword: ta.adminPassword, NewPassword: newAdminPassword}}), 204)

	if !ta.works(mine) {
		t.Fatal("the login that changed the password was ended")
	}
	if _, ok := ta.refreshes(mine); !ok {
		t.Fatal("the changing login cannot refresh")
	}
	if ta.works(other) {
		t.Fatal("another API login's access token still works")
	}
	if _, ok := ta.refreshes(other); ok {
		t.Fatal("another API login still refreshes")
	}
	if b.loggedIn() {
		t.Fatal("a panel session outlived a password change through the API")
	}
	b.login(newAdminPassword, "")
	if !b.loggedIn() {
		t.Fatal("cannot log in with the new password")
	}
}

func TestPanelPasswordChangeEndsOtherLogins(t *testing.T) {
	t.Parallel()
	ta := startAPI(t)
	base := ta.startPanel()
	me, other := newBrowser(t, base), newBrowser(t, base)
	me.login(ta.adminPassword, "")
	other.login(ta.adminPassword, "")
	tok := ta.apiLogin(ta.adminPassword, "")

	st, body := me.post("/password", "/password", url.Values{"current": {ta.adminPassword}, "new": {newAdminPassword}, "repeat": {newAdminPassword}})
	if st != http.StatusSeeOther || !strings.HasPrefix(body, "/dashboard") {
		t.Fatalf("change password: %d %.300s", st, body)
	}
	if !me.loggedIn() {
		t.Fatal("the panel session that changed the password was ended")
	}
	if other.loggedIn() {
		t.Fatal("another panel session outlived the change")
	}
	if ta.works(tok) {
		t.Fatal("an API access token outlived a password change in the panel")
	}
	if _, ok := ta.refreshes(tok); ok {
		t.Fatal("an API login still refreshes after a password change in the panel")
	}
}

func TestCLIResetPasswordEndsEveryLogin(t *testing.T) {
	t.Parallel()
	ta := startAPI(t)
	b := newBrowser(t, ta.startPanel())
	b.login(ta.adminPassword, "")
	tok := ta.apiLogin(ta.adminPassword, "")
	cli := ta.adminSocket()

	var out map[string]string
	if err := cli.Call(context.Background(), "admin.reset-password", adminsock.Target{ID: "admin"}, &out); err != nil {
		t.Fatal(err)
	}
	if ta.works(tok) || b.loggedIn() {
		t.Fatal("a login outlived admin reset-password")
	}
	if _, ok := ta.refreshes(tok); ok {
		t.Fatal("an API login still refreshes after admin reset-password")
	}
	// The one-time password logs in, for the password change only.
	one := ta.apiLogin(out["password"], "")
	if !one.MustChange {
		t.Fatal("the reset password is not one-time")
	}
}

func TestCLIResetTOTPEndsEveryLogin(t *testing.T) {
	t.Parallel()
	ta := startAPI(t)
	ctx := context.Background()
	e, err := ta.svc.BeginTOTP(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	code := func() string { return app.TOTPCode(e.Seed, ta.clock.Now().Unix()/30) }
	recovery, err := ta.svc.ConfirmTOTP(ctx, app.ActorCLI, "admin", e.Seed, code())
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, ta.startPanel())
	ta.clock.Add(30 * time.Second) // every TOTP code lets one login in
	b.login(ta.adminPassword, code())
	ta.clock.Add(30 * time.Second)
	tok := ta.apiLogin(ta.adminPassword, code())

	// Spending a recovery code is no credential change: nobody is logged out.
	ta.apiLogin(ta.adminPassword, recovery[0])
	if !ta.works(tok) || !b.loggedIn() {
		t.Fatal("a login ended when another spent a recovery code")
	}

	var out adminsock.TOTPReset
	if err := ta.adminSocket().Call(ctx, "admin.reset-totp", adminsock.Target{ID: "admin"}, &out); err != nil || !out.WasEnrolled {
		t.Fatalf("reset-totp: %+v %v", out, err)
	}
	if ta.works(tok) || b.loggedIn() {
		t.Fatal("a login outlived admin reset-totp")
	}
	if _, ok := ta.refreshes(tok); ok {
		t.Fatal("an API login still refreshes after admin reset-totp")
	}
	ta.apiLogin(ta.adminPassword, "") // the password alone now
}
