package panel

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/app/apptest"
	"github.com/usipipo/usipipo/app/pay"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/web"
	"github.com/usipipo/usipipo/web/webtest"
)

const testPassword = "a long test admin password"

// testPanel is a service layer with a real store and the panel on a real
// web server on 127.0.0.1:0, and a browser-like client (cookie jar, no
// redirects followed, so tests see each answer).
type testPanel struct {
	t      *testing.T
	svc    *app.Service
	st     *store.Store
	clock  *apptest.Clock
	url    string
	client *http.Client
}

func startPanel(t *testing.T, opts ...func(*Options)) *testPanel {
	t.Helper()
	n := apptest.New(t)
	// Real time: the client's cookie jar expires the session cookie by it.
	n.Clock.Set(time.Now().UTC().Truncate(time.Second))
	svc, st, clk := n.Svc, n.Store, n.Clock
	logger := slog.New(slog.DiscardHandler)
	srv, err := web.New(web.Options{Logger: logger, Metrics: metrics.NewSet()})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := pay.New(pay.Options{Store: st, DataKey: n.DataKey, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ps.Close() })
	o := Options{Service: svc, Payments: ps, Now: clk.Now, Logger: logger}
	for _, f := range opts {
		f(&o)
	}
	if err := Mount(srv.App(), o); err != nil {
		t.Fatal(err)
	}
	tp := &testPanel{t: t, svc: svc, st: st, clock: clk, url: webtest.Serve(t, srv)}
	tp.client = tp.newClient()
	otp, err := svc.ResetAdminPassword(context.Background(), app.ActorCLI, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.ChangeAdminPassword(context.Background(), app.ActorCLI, "admin", otp, testPassword); err != nil {
		t.Fatal(err)
	}
	return tp
}

func (tp *testPanel) newClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 10 * time.Second, Transport: &http.Transport{},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type reply struct {
	status int
	header http.Header
	body   string
}

func (tp *testPanel) do(cl *http.Client, req *http.Request) reply {
	tp.t.Helper()
	resp, err := cl.Do(req)
	if err != nil {
		tp.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, string(b)}
}

func (tp *testPanel) get(cl *http.Client, path string) reply {
	tp.t.Helper()
	req, _ := http.NewRequest("GET", tp.url+path, nil)
	return tp.do(cl, req)
}

// post submits a form as a browser would: same-origin Origin header.
func (tp *testPanel) post(cl *http.Client, path string, form url.Values) reply {
	tp.t.Helper()
	req, _ := http.NewRequest("POST", tp.url+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", tp.url)
	return tp.do(cl, req)
}

var csrfRE = regexp.MustCompile(`name="csrf-token" content="([^"]*)"`)

// csrf reads the session's token from a page.
func (tp *testPanel) csrf(cl *http.Client, path string) string {
	tp.t.Helper()
	r := tp.get(cl, path)
	m := csrfRE.FindStringSubmatch(r.body)
	if m == nil || m[1] == "" {
		tp.t.Fatalf("GET %s: %d, no CSRF token in %.300s", path, r.status, r.body)
	}
	return m[1]
}

// login logs cl in with the password and code, and wants want back.
func (tp *testPanel) login(cl *http.Client, code string, want int) reply {
	tp.t.Helper()
	tok := tp.csrf(cl, "/login")
	r := tp.post(cl, "/login", url.Values{"csrf": {tok}, "username": {"admin"}, "password": {testPassword}, "code": {code}})
	if r.status != want {
		tp.t.Fatalf("login: %d, want %d: %.400s", r.status, want, r.body)
	}
	return r
}

// enrol turns TOTP on for admin through the service and returns the seed.
func (tp *testPanel) enrol() []byte {
	tp.t.Helper()
	e, err := tp.svc.BeginTOTP(context.Background(), "admin")
	if err != nil {
		tp.t.Fatal(err)
	}
	if _, err := tp.svc.ConfirmTOTP(context.Background(), app.ActorCLI, "admin", e.Seed, tp.code(e.Seed)); err != nil {
		tp.t.Fatal(err)
	}
	return e.Seed
}

func (tp *testPanel) code(seed []byte) string {
	return app.TOTPCode(seed, tp.clock.Now().Unix()/30)
}

func appUser(tg int64) app.NewUser { return app.NewUser{TelegramID: tg, Username: "tester"} }

var (
	recoveryRE = regexp.MustCompile(`<li><code>([a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4})</code></li>`)
	secretRE   = regexp.MustCompile(`id="totp-secret">([A-Z2-7]+)<`)
)
