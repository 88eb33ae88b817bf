package node

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/store"
)

// panelBrowser is one browser's cookie for the panel, sent by hand so the
// same cookie reaches the node after a restart on another port.
type panelBrowser struct {
	t      *testing.T
	cookie *http.Cookie
	client *http.Client
}

func newPanelBrowser(t *testing.T) *panelBrowser {
	return &panelBrowser{t: t, client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *panelBrowser) do(base, method, path string, form url.Values) (int, string, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, base+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", base)
	}
	if b.cookie != nil {
		req.AddCookie(b.cookie)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "usipipo_panel" {
			if c.MaxAge < 0 || c.Value == "" {
				b.cookie = nil
			} else {
				b.cookie = c
			}
		}
	}
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(out)
}

var panelCSRF = regexp.MustCompile(`name="csrf-token" content="([^"]*)"`)

func (b *panelBrowser) csrf(base, path string) string {
	b.t.Helper()
	_, _, page := b.do(base, "GET", path, nil)
	m := panelCSRF.FindStringSubmatch(page)
	if m == nil {
		b.t.Fatalf("no CSRF token on %s: %.300s", path, page)
	}
	return m[1]
}

func (b *panelBrowser) login(base, password string) {
	b.t.Helper()
	tok := b.csrf(base, "/login")
	st, loc, body := b.do(base, "POST", "/login", url.Values{"csrf": {tok}, "username": {"admin"}, "password": {password}})
	if st != http.StatusSeeOther || loc != "/dashboard" {
		b.t.Fatalf("login: %d %q %.300s", st, loc, body)
	}
}

// loggedIn reports whether the browser's session opens the dashboard.
func (b *panelBrowser) loggedIn(base string) bool {
	b.t.Helper()
	st, loc, _ := b.do(base, "GET", "/dashboard", nil)
	switch {
	case st == http.StatusOK:
		return true
	case st == http.StatusSeeOther && loc == "/login":
		return false
	}
	b.t.Fatalf("dashboard: %d %q", st, loc)
	return false
}

// A panel login survives a node restart; one that logged out, and one
// ended by its admin's password change, do not. The database holds no
// cookie.
func TestPanelSessionsSurviveRestart(t *testing.T) {
	cfg := testConfig(t, filepath.Join(t.TempDir(), "data"))
	r := start(t, cfg)
	ctx := context.Background()
	otp, err := r.node.Service.ResetAdminPassword(ctx, app.ActorCLI, "admin")
	if err != nil {
		t.Fatal(err)
	}
	const pw, pw2 = "panel-restart-password", "panel-restart-password-2"
	if err := r.node.Service.ChangeAdminPassword(ctx, app.ActorCLI, "admin", otp, pw); err != nil {
		t.Fatal(err)
	}
	base := "http://" + r.node.HTTPAddr.String()
	stay, out, other := newPanelBrowser(t), newPanelBrowser(t), newPanelBrowser(t)
	for _, b := range []*panelBrowser{stay, out, other} {
		b.login(base, pw)
		if !b.loggedIn(base) {
			t.Fatal("not logged in right after login")
		}
	}
	outCookie := *out.cookie
	if st, loc, _ := out.do(base, "POST", "/logout", url.Values{"csrf": {out.csrf(base, "/dashboard")}}); st != http.StatusSeeOther || loc != "/login" {
		t.Fatalf("logout: %d %q", st, loc)
	}
	out.cookie = &outCookie // the logged-out cookie, kept by a thief
	otherCookie := *other.cookie
	tok := stay.csrf(base, "/password")
	if st, _, body := stay.do(base, "POST", "/password", url.Values{"csrf": {tok}, "current": {pw}, "new": {pw2}, "repeat": {pw2}}); st != http.StatusSeeOther {
		t.Fatalf("password change: %d %.300s", st, body)
	}
	if other.loggedIn(base) {
		t.Fatal("a password change left another session logged in")
	}
	other.cookie = &otherCookie
	stayCookie := stay.cookie.Value

	r.stop()
	r2 := start(t, cfg)
	base2 := "http://" + r2.node.HTTPAddr.String()
	if !stay.loggedIn(base2) {
		t.Fatal("a logged-in session did not survive the restart")
	}
	if out.loggedIn(base2) {
		t.Fatal("a logged-out session came back after the restart")
	}
	if other.loggedIn(base2) {
		t.Fatal("a session ended by a password change came back after the restart")
	}
	// The CSRF token of a page loaded before the restart still works.
	if st, loc, _ := stay.do(base2, "POST", "/logout", url.Values{"csrf": {tok}}); st != http.StatusSeeOther || loc != "/login" {
		t.Fatalf("logout with a pre-restart CSRF token: %d %q", st, loc)
	}
	stay.cookie = &http.Cookie{Name: "usipipo_panel", Value: stayCookie}
	if stay.loggedIn(base2) {
		t.Fatal("logged out after the restart, still logged in")
	}
	n := 0
	if err := r2.node.Store.ScanTelemetry(store.PanelSessions, "", func(k, v []byte) bool { n++; return true }); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d stored sessions left after every one ended", n)
	}
	r2.stop()
	db, err := os.ReadFile(filepath.Join(cfg.Data, "usipipo.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{stayCookie, outCookie.Value, otherCookie.Value} {
		if bytes.Contains(db, []byte(c)) {
			t.Fatal("a session cookie is in the database file")
		}
	}
}
