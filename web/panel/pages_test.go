package panel

import (
	"context"
	"encoding/base32"
	"encoding/json"
	"image/png"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/store/model"
)

// Enrolment through the panel: the seed is active only after a valid code
// and the password; the recovery codes are shown once and work once.
func TestTOTPEnrolmentInThePanel(t *testing.T) {
	tp := startPanel(t)
	tp.login(tp.client, "", http.StatusSeeOther)
	other := tp.newClient() // logged in with the password alone: ended by the enrolment
	tp.login(other, "", http.StatusSeeOther)
	tok := tp.csrf(tp.client, "/totp")
	if r := tp.get(tp.client, "/totp/qr.png"); r.status != 404 {
		t.Fatalf("QR before enrolment began: %d", r.status)
	}
	if r := tp.post(tp.client, "/totp/begin", url.Values{"csrf": {tok}}); r.status != http.StatusSeeOther {
		t.Fatalf("begin: %d", r.status)
	}
	page := tp.get(tp.client, "/totp")
	m := secretRE.FindStringSubmatch(page.body)
	if m == nil {
		t.Fatalf("no secret on %.500s", page.body)
	}
	seed, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(m[1])
	if err != nil {
		t.Fatal(err)
	}
	qr := tp.get(tp.client, "/totp/qr.png")
	if _, err := png.Decode(strings.NewReader(qr.body)); err != nil || qr.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("QR: %v %q", err, qr.header.Get("Cache-Control"))
	}
	if enrolled, _, _ := tp.svc.TOTPStatus(context.Background(), "admin"); enrolled {
		t.Fatal("enrolled before confirmation")
	}
	wrong := app.TOTPCode(seed, tp.clock.Now().Unix()/30+10)
	if r := tp.post(tp.client, "/totp/confirm", url.Values{"csrf": {tok}, "password": {testPassword}, "code": {wrong}}); r.status != 422 {
		t.Fatalf("confirm with a wrong code: %d", r.status)
	}
	if r := tp.post(tp.client, "/totp/confirm", url.Values{"csrf": {tok}, "password": {"nope"}, "code": {tp.code(seed)}}); r.status != 422 {
		t.Fatalf("confirm with a wrong password: %d", r.status)
	}
	r := tp.post(tp.client, "/totp/confirm", url.Values{"csrf": {tok}, "password": {testPassword}, "code": {tp.code(seed)}})
	codes := recoveryRE.FindAllStringSubmatch(r.body, -1)
	if r.status != 200 || len(codes) != app.RecoveryCodeCount {
		t.Fatalf("confirm: %d, %d codes: %.600s", r.status, len(codes), r.body)
	}
	if again := tp.get(tp.client, "/totp"); again.status != 200 || recoveryRE.MatchString(again.body) || strings.Contains(again.body, m[1]) {
		t.Fatalf("after enrolment: %d, or recovery codes or the secret shown again", again.status)
	}
	if r := tp.get(other, "/users"); r.status != http.StatusSeeOther || r.header.Get("Location") != "/login" {
		t.Fatalf("another session after the enrolment: %d %q", r.status, r.header.Get("Location"))
	}
	// A new browser: password alone is refused, a recovery code works once.
	b := tp.newClient()
	tp.login(b, "", http.StatusUnauthorized)
	tp.login(b, codes[0][1], http.StatusSeeOther)
	tp.login(tp.newClient(), codes[0][1], http.StatusUnauthorized)
	tp.login(tp.newClient(), tp.code(seed), http.StatusSeeOther)
}

// The operator's path: create a user, a key, see its config and QR,
// rotate and revoke it, ban, grant credits once per form.
func TestUsersAndKeys(t *testing.T) {
	tp := startPanel(t)
	tp.login(tp.client, "", http.StatusSeeOther)
	tok := tp.csrf(tp.client, "/users")
	r := tp.post(tp.client, "/users", url.Values{"csrf": {tok}, "telegram_id": {"5151"}, "username": {"ana"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("create user: %d %.300s", r.status, r.body)
	}
	userPath := r.header.Get("Location")
	uid := strings.TrimPrefix(userPath, "/users/")
	if r := tp.get(tp.client, "/users?q=5151"); !strings.Contains(r.body, uid) || !strings.Contains(r.body, "ana") {
		t.Fatalf("search: %.500s", r.body)
	}
	if r := tp.get(tp.client, "/users?banned=yes"); strings.Contains(r.body, uid) {
		t.Fatal("an unbanned user listed as banned")
	}
	if r := tp.post(tp.client, "/users", url.Values{"csrf": {tok}, "telegram_id": {"-3"}}); r.status != 422 {
		t.Fatalf("bad telegram id: %d", r.status)
	}

	r = tp.post(tp.client, "/keys", url.Values{"csrf": {tok}, "user": {uid}, "type": {"wireguard"}, "name": {"laptop"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("create key: %d %.300s", r.status, r.body)
	}
	keyPath := r.header.Get("Location")
	page := tp.get(tp.client, keyPath)
	if !strings.Contains(page.body, "[Interface]") || !strings.Contains(page.body, "PrivateKey") {
		t.Fatalf("key page without its config: %.500s", page.body)
	}
	qrPath := regexp.MustCompile(`src="(/keys/[^"]+/qr\.png[^"]*)"`).FindStringSubmatch(page.body)
	if qrPath == nil {
		t.Fatal("no QR image on the key page")
	}
	qr := tp.get(tp.client, strings.ReplaceAll(qrPath[1], "&amp;", "&"))
	if _, err := png.Decode(strings.NewReader(qr.body)); err != nil || qr.header.Get("Content-Type") != "image/png" {
		t.Fatalf("QR: %v %q", err, qr.header.Get("Content-Type"))
	}
	before := regexp.MustCompile(`PrivateKey = (\S+)`).FindStringSubmatch(page.body)[1]
	if r := tp.post(tp.client, keyPath+"/rotate", url.Values{"csrf": {tok}}); r.status != http.StatusSeeOther {
		t.Fatalf("rotate: %d", r.status)
	}
	page = tp.get(tp.client, keyPath)
	if strings.Contains(page.body, before) || !strings.Contains(page.body, "Key rotated") {
		t.Fatal("rotation kept the private key or said nothing")
	}
	if r := tp.post(tp.client, keyPath+"/revoke", url.Values{"csrf": {tok}, "reason": {"lost"}}); r.status != http.StatusSeeOther {
		t.Fatalf("revoke: %d", r.status)
	}
	page = tp.get(tp.client, keyPath)
	if !strings.Contains(page.body, "revoked") || strings.Contains(page.body, "PrivateKey") {
		t.Fatalf("revoked key page: %.500s", page.body)
	}
	if r := tp.get(tp.client, keyPath+"/qr.png"); r.status != 404 {
		t.Fatalf("QR of a revoked key: %d", r.status)
	}
	if r := tp.get(tp.client, "/keys?user="+uid+"&status=revoked"); !strings.Contains(r.body, strings.TrimPrefix(keyPath, "/keys/")) {
		t.Fatal("revoked key not listed")
	}

	if r := tp.post(tp.client, userPath+"/ban", url.Values{"csrf": {tok}, "reason": {"abuse"}}); r.status != http.StatusSeeOther {
		t.Fatalf("ban: %d", r.status)
	}
	if u, _ := tp.svc.User(context.Background(), uid); !u.Banned {
		t.Fatal("not banned")
	}
	if r := tp.post(tp.client, userPath+"/unban", url.Values{"csrf": {tok}}); r.status != http.StatusSeeOther {
		t.Fatalf("unban: %d", r.status)
	}
	idem := regexp.MustCompile(`name="idem" value="([^"]+)"`).FindStringSubmatch(tp.get(tp.client, userPath).body)[1]
	credit := url.Values{"csrf": {tok}, "idem": {idem}, "amount": {"25"}, "reason": {"gift"}}
	for range 2 { // the same form submitted twice moves credits once
		if r := tp.post(tp.client, userPath+"/credits", credit); r.status != http.StatusSeeOther {
			t.Fatalf("credits: %d %.300s", r.status, r.body)
		}
	}
	if b, _ := tp.svc.Balance(context.Background(), uid); b != 25 {
		t.Fatalf("balance %d, want 25", b)
	}
	audit := tp.get(tp.client, "/audit?user="+uid)
	if !strings.Contains(audit.body, "admin:admin") {
		t.Fatalf("audit page does not name the panel login: %.500s", audit.body)
	}
}

func TestAPIKeyShownOnce(t *testing.T) {
	tp := startPanel(t)
	tp.login(tp.client, "", http.StatusSeeOther)
	tok := tp.csrf(tp.client, "/apikeys")
	r := tp.post(tp.client, "/apikeys", url.Values{"csrf": {tok}, "name": {"billing"}, "scope": {"read"}, "days": {"30"}})
	m := regexp.MustCompile(`id="new-token">([^<]+)<`).FindStringSubmatch(r.body)
	if r.status != http.StatusCreated || m == nil {
		t.Fatalf("create: %d %.400s", r.status, r.body)
	}
	k, err := tp.svc.AuthenticateAPIKey(context.Background(), m[1])
	if err != nil || k.Scopes[0] != model.ScopeRead || k.ExpiresAt.IsZero() {
		t.Fatalf("the shown token: %v %+v", err, k)
	}
	if list := tp.get(tp.client, "/apikeys"); strings.Contains(list.body, m[1]) || !strings.Contains(list.body, "billing") {
		t.Fatal("token shown again, or key not listed")
	}
	if r := tp.post(tp.client, "/apikeys/"+k.ID+"/revoke", url.Values{"csrf": {tok}}); r.status != http.StatusSeeOther {
		t.Fatalf("revoke: %d", r.status)
	}
	if _, err := tp.svc.AuthenticateAPIKey(context.Background(), m[1]); err == nil {
		t.Fatal("a revoked key still authenticates")
	}
}

func TestDashboardDataAndStatus(t *testing.T) {
	tp := startPanel(t, func(o *Options) {
		o.Status = func(context.Context) (any, error) {
			return map[string]any{"node": "n1", "installed": map[string]int{"wireguard": 1}}, nil
		}
		o.Warning = "exposed without TLS"
	})
	tp.login(tp.client, "", http.StatusSeeOther)
	u, err := tp.svc.RegisterUser(context.Background(), app.ActorCLI, appUser(9))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tp.svc.CreateKey(context.Background(), app.ActorCLI, app.KeyRequest{UserID: u.ID, Type: model.Outline, Admin: true}); err != nil {
		t.Fatal(err)
	}
	r := tp.get(tp.client, "/dashboard/data")
	var d chartSeries
	if err := json.Unmarshal([]byte(r.body), &d); err != nil || r.status != 200 {
		t.Fatalf("data: %d %v", r.status, err)
	}
	if len(d.Days) != dashboardDays || len(d.Stars) != dashboardDays || len(d.BytesIn) != dashboardDays {
		t.Fatalf("series lengths %d %d %d", len(d.Days), len(d.Stars), len(d.BytesIn))
	}
	if d.NewUsers[len(d.NewUsers)-1] != 1 || d.Keys["outline"] != 1 || d.Totals["users"] != 1 {
		t.Fatalf("data %+v", d)
	}
	st := tp.get(tp.client, "/dashboard/status")
	if !strings.Contains(st.body, "installed.wireguard") || strings.Contains(st.body, "<html") {
		t.Fatalf("status fragment: %.300s", st.body)
	}
	if page := tp.get(tp.client, "/dashboard"); !strings.Contains(page.body, "exposed without TLS") {
		t.Fatal("no warning banner")
	}
}
