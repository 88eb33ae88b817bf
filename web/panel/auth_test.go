package panel

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/web/loginguard"
)

func TestSecurityHeadersAndCookieFlags(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		tp := startPanel(t, func(o *Options) { o.TLS = tlsOn })
		r := tp.get(tp.client, "/login")
		if r.status != 200 {
			t.Fatalf("GET /login: %d", r.status)
		}
		for h, want := range map[string]string{
			"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
			"X-Frame-Options": "DENY", "Cache-Control": "no-store",
		} {
			if got := r.header.Get(h); got != want {
				t.Errorf("%s = %q, want %q", h, got, want)
			}
		}
		if !strings.Contains(CSP, "frame-ancestors 'none'") || strings.Contains(CSP, "unsafe") {
			t.Errorf("CSP %q", CSP)
		}
		if hsts := r.header.Get("Strict-Transport-Security"); (hsts != "") != tlsOn {
			t.Errorf("TLS %v: HSTS %q", tlsOn, hsts)
		}
		cookie := r.header.Get("Set-Cookie")
		for _, attr := range []string{"HttpOnly", "SameSite=Strict", "path=/"} {
			if !strings.Contains(cookie, attr) {
				t.Errorf("cookie %q lacks %s", cookie, attr)
			}
		}
		if strings.Contains(cookie, "secure") != tlsOn || strings.HasPrefix(cookie, "__Host-") != tlsOn {
			t.Errorf("TLS %v: cookie %q", tlsOn, cookie)
		}
		a := tp.get(tp.client, "/assets/panel.js")
		if a.status != 200 || !strings.HasPrefix(a.header.Get("Content-Type"), "text/javascript") ||
			a.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("asset: %d %q", a.status, a.header.Get("Content-Type"))
		}
		if r := tp.get(tp.client, "/assets/..%2fpanel.go"); r.status != 404 {
			t.Errorf("asset path escape: %d", r.status)
		}
	}
}

// Every page and fragment is free of inline script, inline style and
// event-handler attributes, which the CSP would block.
func TestNoInlineScriptOrStyle(t *testing.T) {
	tp := startPanel(t)
	tp.login(tp.client, "", http.StatusSeeOther)
	bad := regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>[^<]|<script>|<style|\sstyle=|\son[a-z]+=|javascript:`)
	u, err := tp.svc.RegisterUser(context.Background(), "cli", appUser(77))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/login", "/dashboard", "/dashboard/status", "/users", "/users/" + u.ID, "/keys",
		"/audit", "/apikeys", "/totp", "/password", "/users/nonexistent00000000000", "/payments", "/settings",
		"/tickets", "/broadcast", "/proxies"} {
		r := tp.get(tp.client, path)
		if m := bad.FindString(r.body); m != "" {
			t.Errorf("%s: inline code %q", path, m)
		}
	}
}

func TestLoginNeedsCSRFAndSameOrigin(t *testing.T) {
	tp := startPanel(t)
	tok := tp.csrf(tp.client, "/login")
	form := url.Values{"username": {"admin"}, "password": {testPassword}}
	if r := tp.post(tp.client, "/login", form); r.status != http.StatusForbidden {
		t.Fatalf("login without a CSRF token: %d", r.status)
	}
	form.Set("csrf", tok+"x")
	if r := tp.post(tp.client, "/login", form); r.status != http.StatusForbidden {
		t.Fatalf("login with a wrong CSRF token: %d", r.status)
	}
	form.Set("csrf", tok)
	req, _ := http.NewRequest("POST", tp.url+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://evil.example")
	if r := tp.do(tp.client, req); r.status != http.StatusForbidden {
		t.Fatalf("login from another origin: %d", r.status)
	}
	// Another browser's token does not fit this session.
	other := tp.newClient()
	if r := tp.post(other, "/login", form); r.status != http.StatusForbidden {
		t.Fatalf("a token from another session: %d", r.status)
	}
	r := tp.post(tp.client, "/login", form)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/dashboard" {
		t.Fatalf("login: %d %q", r.status, r.header.Get("Location"))
	}
}

func TestLoginWithTOTPAndFailuresAudited(t *testing.T) {
	tp := startPanel(t)
	seed := tp.enrol()
	anon := tp.csrf(tp.client, "/login")
	r := tp.login(tp.client, "", http.StatusUnauthorized)
	if !strings.Contains(r.body, "authenticator code") {
		t.Fatalf("no second-factor message: %.300s", r.body)
	}
	tp.login(tp.client, "123456x", http.StatusUnauthorized)
	if r := tp.get(tp.client, "/dashboard"); r.status != http.StatusSeeOther || r.header.Get("Location") != "/login" {
		t.Fatalf("dashboard before login: %d %q", r.status, r.header.Get("Location"))
	}
	tp.login(tp.client, tp.code(seed), http.StatusSeeOther)
	if r := tp.get(tp.client, "/dashboard"); r.status != 200 || !strings.Contains(r.body, "id=\"charts\"") {
		t.Fatalf("dashboard after login: %d", r.status)
	}
	// The same code, replayed from another browser while still valid.
	tp.login(tp.newClient(), tp.code(seed), http.StatusUnauthorized)
	tp.clock.Add(30 * time.Second)
	tp.login(tp.newClient(), tp.code(seed), http.StatusSeeOther)
	// The login replaced the session: the login form's token is dead.
	if tok := tp.csrf(tp.client, "/dashboard"); tok == anon {
		t.Fatal("the session survived the login (fixation)")
	}
	entries, _, err := tp.svc.Audit(context.Background(), store.AuditFilter{}, store.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var failed int
	for _, e := range entries {
		if e.Action == "auth.login_failed/1" {
			failed++
			if e.Actor != "panel" || !strings.Contains(string(e.Command), `"second_factor":true`) {
				t.Errorf("entry %+v %s", e, e.Command)
			}
		}
	}
	if failed != 3 {
		t.Fatalf("%d failed logins audited, want 3", failed)
	}
}

func TestFailedLoginsAreSlowedDown(t *testing.T) {
	tp := startPanel(t, func(o *Options) { o.FreeTries = 2 })
	tok := tp.csrf(tp.client, "/login")
	wrong := url.Values{"csrf": {tok}, "username": {"admin"}, "password": {"wrong"}}
	for range 2 {
		if r := tp.post(tp.client, "/login", wrong); r.status != http.StatusUnauthorized {
			t.Fatalf("wrong password: %d", r.status)
		}
	}
	right := url.Values{"csrf": {tok}, "username": {"admin"}, "password": {testPassword}}
	r := tp.post(tp.client, "/login", right)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "1" {
		t.Fatalf("third try at once: %d Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
	tp.clock.Add(1100 * time.Millisecond)
	if r := tp.post(tp.client, "/login", right); r.status != http.StatusSeeOther {
		t.Fatalf("after the wait: %d", r.status)
	}
}

func TestSessionExpiryAndLogout(t *testing.T) {
	tp := startPanel(t, func(o *Options) { o.Idle, o.Lifetime = 10*time.Minute, time.Hour })
	tp.login(tp.client, "", http.StatusSeeOther)
	for range 6 { // used every 9 minutes: alive until the lifetime ends
		tp.clock.Add(9 * time.Minute)
		if r := tp.get(tp.client, "/users"); r.status != 200 {
			t.Fatalf("within the idle time: %d", r.status)
		}
	}
	tp.clock.Add(9 * time.Minute) // 63 minutes after login
	if r := tp.get(tp.client, "/users"); r.status != http.StatusSeeOther {
		t.Fatalf("after the lifetime: %d", r.status)
	}
	tp.login(tp.client, "", http.StatusSeeOther)
	tp.clock.Add(11 * time.Minute)
	if r := tp.get(tp.client, "/users"); r.status != http.StatusSeeOther {
		t.Fatalf("after the idle time: %d", r.status)
	}
	tp.login(tp.client, "", http.StatusSeeOther)
	tok := tp.csrf(tp.client, "/users")
	cookies := tp.client.Jar.Cookies(mustURL(tp.url))
	if r := tp.post(tp.client, "/logout", url.Values{"csrf": {tok}}); r.status != http.StatusSeeOther {
		t.Fatalf("logout: %d", r.status)
	}
	// The old cookie, replayed, no longer opens anything.
	replay := tp.newClient()
	replay.Jar.SetCookies(mustURL(tp.url), cookies)
	if r := tp.get(replay, "/users"); r.status != http.StatusSeeOther {
		t.Fatalf("a logged-out cookie: %d", r.status)
	}
}

func TestStateChangesNeedCSRF(t *testing.T) {
	tp := startPanel(t)
	tp.login(tp.client, "", http.StatusSeeOther)
	form := url.Values{"telegram_id": {"4242"}}
	if r := tp.post(tp.client, "/users", form); r.status != http.StatusForbidden {
		t.Fatalf("create without a token: %d", r.status)
	}
	if _, err := tp.svc.FindUser(context.Background(), "4242"); err == nil {
		t.Fatal("a user was created without a token")
	}
	// htmx sends the token as a header.
	req, _ := http.NewRequest("POST", tp.url+"/users", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-CSRF-Token", tp.csrf(tp.client, "/users"))
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if r := tp.do(tp.client, req); r.status != http.StatusForbidden {
		t.Fatalf("a cross-site request with the token: %d", r.status)
	}
	req, _ = http.NewRequest("POST", tp.url+"/users", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-CSRF-Token", tp.csrf(tp.client, "/users"))
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if r := tp.do(tp.client, req); r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/users/") {
		t.Fatalf("create with the header token: %d %q", r.status, r.header.Get("Location"))
	}
	if _, err := tp.svc.FindUser(context.Background(), "4242"); err != nil {
		t.Fatal(err)
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// The back-off is the node's, shared with the API through Options.Logins:
// failures counted elsewhere slow the panel's logins too.
func TestLoginBackOffSharedThroughOptions(t *testing.T) {
	var logins *loginguard.Guard
	tp := startPanel(t, func(o *Options) { logins = loginguard.New(2, o.Now); o.Logins = logins })
	logins.Fail("127.0.0.1", "admin") // as the API would, for the same address and username
	logins.Fail("127.0.0.1", "admin")
	tok := tp.csrf(tp.client, "/login")
	r := tp.post(tp.client, "/login", url.Values{"csrf": {tok}, "username": {"admin"}, "password": {testPassword}})
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("login after failures elsewhere: %d Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
}
