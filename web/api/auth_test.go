package api

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

func TestAuthRequired(t *testing.T) {
	t.Parallel()
	ta := startAPI(t)
	for _, tc := range []struct{ name, token string }{
		{"no token", ""},
		{"garbage", "abc"},
		{"malformed api key", "usp_nope"},
		{"unknown api key", "usp_aaaaaaaaaaaaaaaa_77777777777777777777777777777777"},
		{"jwt with bad signature", func() string { tok := ta.login().AccessToken; return tok[:len(tok)-4] + "AAAA" }()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ta.do(req{method: "GET", path: "/api/v1/users", token: tc.token})
			wantStatus(t, r, 401)
			if r.problemType() != "unauthorized" || !strings.HasPrefix(r.header.Get("Content-Type"), "application/problem+json") {
				t.Fatalf("problem %q %q", r.problemType(), r.header.Get("Content-Type"))
			}
			if r.header.Get("WWW-Authenticate") == "" {
				t.Fatal("no WWW-Authenticate")
			}
		})
	}
	// Public routes.
	for _, p := range []string{"/api/v1/health", "/api/openapi.json", "/api/docs", "/api/docs/docs.js"} {
		wantStatus(t, ta.do(req{method: "GET", path: p}), 200)
	}
}

func TestScopes(t *testing.T) {
	t.Parallel()
	ta := startAPI(t)
	u := ta.user(1)
	cases := []struct {
		method, path string
		body         any
		read, write  int // statuses for the read and write keys; admin always passes
	}{
		{"GET", "/api/v1/users/" + u.ID, nil, 200, 200},
		{"POST", "/api/v1/users", createUserRequest{TelegramID: 2}, 403, 201},
		{"POST", "/api/v1/plans", planRequest{Name: "p", DurationDays: 30, MaxKeys: 1}, 403, 403},
		{"GET", "/api/v1/apikeys", nil, 403, 403},
		{"GET", "/api/v1/audit", nil, 403, 403},
		{"DELETE", "/api/v1/users/" + u.ID, nil, 403, 403},
		{"POST", "/api/v1/keys", createKeyRequest{UserID: u.ID, Type: "outline", Grant: true}, 403, 403},
	}
	for _, c := range cases {
		for scope, want := range map[string]int{"read": c.read, "write": c.write} {
			r := ta.do(req{method: c.method, path: c.path, body: c.body, token: ta.tokens[scope]})
			if r.status != want {
				t.Errorf("%s %s with %s: %d, want %d: %s", c.method, c.path, scope, r.status, want, r.body)
			}
			if want == 403 && r.problemType() != "insufficient-scope" {
				t.Errorf("problem type %q", r.problemType())
			}
		}
	}
	r := ta.do(req{method: "POST", path: "/api/v1/keys", token: ta.tokens["admin"],
		body: createKeyRequest{UserID: u.ID, Type: "outline", Grant: true, Limits: &model.Limits{DataCap: 1 << 30}}})
	wantStatus(t, r, 201)
}

func TestAPIKeyRevokedAndExpired(t *testing.T) {
	t.Parallel()
	ta := startAPI(t)
	adm := ta.tokens["admin"]
	r := ta.do(req{method: "POST", path: "/api/v1/apikeys", token: adm,
		body: createAPIKeyRequest{Name: "short", Scopes: []string{"read"}, ExpiresAt: ta.clock.Now().Add(time.Hour)}})
	wantStatus(t, r, 201)
	var nk app.NewAPIKey
	r.json(t, &nk)
	if !strings.HasPrefix(nk.Token, "usp_") || nk.Key.Hash != nil {
		t.Fatalf("new key %+v", nk)
	}
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/plans", token: nk.Token}), 200)
	ta.clock.Add(time.Hour)
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/plans", token: nk.Token}), 401)

	r = ta.do(req{method: "POST", path: "/api/v1/apikeys", token: adm, body: createAPIKeyRequest{Name: "k", Scopes: []string{"write"}}})
	wantStatus(t, r, 201)
	r.json(t, &nk)
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/plans", token: nk.Token}), 200)
	wantStatus(t, ta.do(req{method: "DELETE", path: "/api/v1/apikeys/" + nk.Key.ID, token: adm}), 204)
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/plans", token: nk.Token}), 401)
	wantStatus(t, ta.do(req{method: "DELETE", path: "/api/v1/apikeys/nope", token: adm}), 404)

	r = ta.do(req{method: "GET", path: "/api/v1/apikeys?limit=2", token: adm})
	wantStatus(t, r, 200)
	var l list[model.APIKey]
	r.json(t, &l)
	if len(l.Items) != 2 || l.Next == "" {
		t.Fatalf("page %+v", l)
	}
	if strings.Contains(string(r.body), `"hash"`) && !strings.Contains(string(r.body), `"hash":null`) {
		t.Fatalf("hash listed: %s", r.body)
	}
	wantStatus(t, ta.do(req{method: "POST", path: "/api/v1/apikeys", token: adm, body: createAPIKeyRequest{Name: "k", Scopes: []string{"root"}}}), 422)
}

func encodeSeg(v any) string {
	b, _ := json.Marshal(v)
	return b64(b)
}

func TestForgedTokens(t *testing.T) {
	t.Parallel()
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	ta := startAPI(t, func(o *Options) { o.SigningKey = priv })
	now := ta.clock.Now()
	ta.login() // a live family is not enough: the token itself must verify
	good := claims{Issuer: jwtIssuer, Audience: jwtAudience, Subject: "admin", IssuedAt: now.Unix(),
		NotAfter: now.Add(time.Hour).Unix(), Scope: "admin", Family: "x"}
	pub := priv.Public().(ed25519.PublicKey)
	hs := func(key []byte) string {
		signing := encodeSeg(jwtHeader{Alg: "HS256", Typ: "JWT"}) + "." + encodeSeg(good)
		m := hmac.New(sha256.New, key)
		m.Write([]byte(signing))
		return signing + "." + b64(m.Sum(nil))
	}
	for name, tok := range map[string]string{
		"alg none":           encodeSeg(jwtHeader{Alg: "none"}) + "." + encodeSeg(good) + ".",
		"alg none no dot":    encodeSeg(jwtHeader{Alg: "none"}) + "." + encodeSeg(good),
		"HS256 with pub key": hs(pub),
		"HS256 with pub b64": hs([]byte(b64(pub))),
		"EdDSA other key":    newSigner(ed25519.NewKeyFromSeed(append(make([]byte, 31), 1)), ta.clock.Now).mustSign(t),
		"lowercase alg":      strings.Replace(newSigner(priv, ta.clock.Now).mustSign(t), encodeSeg(jwtHeader{Alg: jwtAlg, Typ: "JWT", Kid: newSigner(priv, ta.clock.Now).kid}), encodeSeg(jwtHeader{Alg: "eddsa", Typ: "JWT"}), 1),
		"unknown family":     newSigner(priv, ta.clock.Now).mustSign(t),
	} {
		t.Run(name, func(t *testing.T) {
			wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/plans", token: tok}), 401)
		})
	}
}

func (s *signer) mustSign(t *testing.T) string {
	tok, _, err := s.sign("admin", admin, "no-such-family", false, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestAccessTokenExpires(t *testing.T) {
	t.Parallel()
	ta := startAPI(t)
	tok := ta.login()
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/plans", token: tok.AccessToken}), 200)
	ta.clock.Add(DefaultAccessTTL)
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/plans", token: tok.AccessToken}), 401)
}

func TestRefreshRotationAndReuse(t *testing.T) {
	t.Parallel()
	ta := startAPI(t)
	t1 := ta.login()
	r := ta.do(req{method: "POST", path: "/api/v1/auth/refresh", body: refreshRequest{t1.RefreshToken}})
	wantStatus(t, r, 200)
	var t2 tokenResponse
	r.json(t, &t2)
	if t2.RefreshToken == t1.RefreshToken || t2.AccessToken == t1.AccessToken {
		t.Fatal("refresh did not rotate")
	}
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/plans", token: t2.AccessToken}), 200)
	// The first token again: a replay revokes the family.
	wantStatus(t, ta.do(req{method: "POST", path: "/api/v1/auth/refresh", body: refreshRequest{t1.RefreshToken}}), 401)
	wantStatus(t, ta.do(req{method: "POST", path: "/api/v1/auth/refresh", body: refreshRequest{t2.RefreshToken}}), 401)
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/plans", token: t2.AccessToken}), 401)
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/plans", token: t1.AccessToken}), 401)

	// Another login is unaffected, and logout ends it.
	t3 := ta.login()
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/plans", token: t3.AccessToken}), 200)
	wantStatus(t, ta.do(req{method: "POST", path: "/api/v1/auth/logout", body: refreshRequest{t3.RefreshToken}}), 204)
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/plans", token: t3.AccessToken}), 401)
	wantStatus(t, ta.do(req{method: "POST", path: "/api/v1/auth/logout", body: refreshRequest{"nope"}}), 401)

	// Refresh tokens end with their family.
	t4 := ta.login()
	ta.clock.Add(DefaultRefreshTTL)
	wantStatus(t, ta.do(req{method: "POST", path: "/api/v1/auth/refresh", body: refreshRequest{t4.RefreshToken}}), 401)
}

func TestLoginFailuresSlowed(t *testing.T) {
	t.Parallel()
	ta := startAPI(t)
	bad := loginRequest{Username: "admin", Password: "wrong"}
	for i := 0; i < DefaultLoginFreeTry; i++ {
		wantStatus(t, ta.do(req{method: "POST", path: "/api/v1/auth/login", body: bad}), 401)
	}
	// Back-off now holds even the right password.
	good := loginRequest{Username: "admin", Password: ta.adminPassword}
	r := ta.do(req{method: "POST", path: "/api/v1/auth/login", body: good})
	wantStatus(t, r, 429)
	if r.header.Get("Retry-After") != "1" {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	ta.clock.Add(time.Second)
	wantStatus(t, ta.do(req{method: "POST", path: "/api/v1/auth/login", body: bad}), 401)
	r = ta.do(req{method: "POST", path: "/api/v1/auth/login", body: good})
	wantStatus(t, r, 429)
	if r.header.Get("Retry-After") != "2" {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	ta.clock.Add(2 * time.Second)
	wantStatus(t, ta.do(req{method: "POST", path: "/api/v1/auth/login", body: good}), 200)
	// Unknown users fail the same way.
	wantStatus(t, ta.do(req{method: "POST", path: "/api/v1/auth/login", body: loginRequest{Username: "root", Password: "x"}}), 401)
	wantStatus(t, ta.do(req{method: "POST", path: "/api/v1/auth/login", body: `{"username":`}), 400)
}

func TestRateLimits(t *testing.T) {
	t.Parallel()
	ta := startAPI(t, func(o *Options) { o.KeyRate = 1 })
	tok := ta.tokens["read"]
	for i := 0; i < 2; i++ { // burst of 2
		wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/plans", token: tok}), 200)
	}
	r := ta.do(req{method: "GET", path: "/api/v1/plans", token: tok})
	wantStatus(t, r, 429)
	if r.header.Get("Retry-After") != "1" || r.problemType() != "rate-limited" {
		t.Fatalf("Retry-After %q type %q", r.header.Get("Retry-After"), r.problemType())
	}
	// Another key has its own bucket.
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/plans", token: ta.tokens["write"]}), 200)
	ta.clock.Add(time.Second)
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/plans", token: tok}), 200)

	ip := startAPI(t, func(o *Options) { o.IPRate = rate.Limit(0.5) })
	wantStatus(t, ip.do(req{method: "GET", path: "/api/v1/health"}), 200)
	r = ip.do(req{method: "GET", path: "/api/v1/health"})
	wantStatus(t, r, 429)
	if r.header.Get("Retry-After") != "2" {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
}

func TestTOTPVectors(t *testing.T) {
	t.Parallel()
	seed := []byte("12345678901234567890") // RFC 6238 appendix B, SHA-1
	for _, v := range []struct {
		t    int64
		code string
	}{{59, "287082"}, {1111111109, "081804"}, {1234567890, "005924"}, {2000000000, "279037"}} {
		if got := app.TOTPCode(seed, v.t/30); got != v.code {
			t.Errorf("T=%d: %s, want %s", v.t, got, v.code)
		}
		if !app.ValidTOTP(seed, v.code, time.Unix(v.t+30, 0)) || app.ValidTOTP(seed, v.code, time.Unix(v.t+90, 0)) {
			t.Errorf("T=%d: drift window wrong", v.t)
		}
	}
}

func TestLastUsedFlushed(t *testing.T) {
	t.Parallel()
	ta := startAPI(t)
	k, err := ta.svc.AuthenticateAPIKey(context.Background(), ta.tokens["read"])
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/plans", token: ta.tokens["read"]}), 200)
	ta.clock.Add(flushEvery)
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/plans", token: ta.tokens["read"]}), 200)
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := ta.st.GetTelemetry(store.LastUsed, LastUsedKey(k.ID))
		if err != nil {
			t.Fatal(err)
		}
		if len(b) == 8 && int64(binary.BigEndian.Uint64(b)) == ta.clock.Now().Unix() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("last_used not flushed: %x", b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSigningKeyFrom(t *testing.T) {
	t.Parallel()
	a, err := SigningKeyFrom(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := SigningKeyFrom(make([]byte, 32))
	c, _ := SigningKeyFrom(append(make([]byte, 31), 1))
	if !a.Equal(b) || a.Equal(c) {
		t.Fatal("derivation is not a function of the secret")
	}
	if _, err := SigningKeyFrom([]byte("short")); err == nil {
		t.Fatal("short secret accepted")
	}
}

func TestChangePassword(t *testing.T) {
	t.Parallel()
	ta := startAPI(t)
	pw, err := ta.svc.ResetAdminPassword(context.Background(), app.ActorCLI, "ops")
	if err != nil {
		t.Fatal(err)
	}
	login := func(password string) *resp {
		return ta.do(req{method: "POST", path: "/api/v1/auth/login", body: loginRequest{Username: "ops", Password: password}})
	}
	var t1, t2 tokenResponse
	login(pw).json(t, &t1)
	login(pw).json(t, &t2)
	if !t1.MustChange {
		t.Fatal("a reset password does not ask for a change")
	}
	// A one-time password's token is good for the change and nothing else.
	r := ta.do(req{method: "GET", path: "/api/v1/plans", token: t1.AccessToken})
	wantStatus(t, r, 403)
	if r.problemType() != "password-change-required" {
		t.Fatalf("type %q", r.problemType())
	}
	path := "/api/v1/auth/password"
	wantStatus(t, ta.do(req{method: "POST", path: path, token: ta.tokens["admin"], body: passwordRequest{pw, "a-long-new-password"}}), 403)
	wantStatus(t, ta.do(req{method: "POST", path: path, token: t1.AccessToken, body: passwordRequest{"wrong", "a-long-new-password"}}), 403)
	wantStatus(t, ta.do(req{method: "POST", path: path, token: t1.AccessToken, body: passwordRequest{pw, "short"}}), 422)
	wantStatus(t, ta.do(req{method: "POST", path: path, token: t1.AccessToken, body: passwordRequest{pw, "a-long-new-password"}}), 204)
	// The refreshed token of this login is a full one; other logins ended.
	r = ta.do(req{method: "POST", path: "/api/v1/auth/refresh", body: refreshRequest{t1.RefreshToken}})
	wantStatus(t, r, 200)
	var t3 tokenResponse
	r.json(t, &t3)
	if t3.MustChange {
		t.Fatal("must change after a change")
	}
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/plans", token: t3.AccessToken}), 200)
	wantStatus(t, ta.do(req{method: "POST", path: "/api/v1/auth/refresh", body: refreshRequest{t2.RefreshToken}}), 401)
	wantStatus(t, login(pw), 401)
	r = login("a-long-new-password")
	wantStatus(t, r, 200)
	var t4 tokenResponse
	r.json(t, &t4)
	if t4.MustChange {
		t.Fatal("must change after a change")
	}
}
