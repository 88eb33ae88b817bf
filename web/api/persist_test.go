package api

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/web"
	"github.com/usipipo/usipipo/web/loginguard"
	"github.com/usipipo/usipipo/web/webtest"
)

// withSigningKey fixes the signing key, as a node does (SigningKeyFrom its
// data key), so a second Mount on the same store is the same node restarted.
func withSigningKey(t *testing.T) (option, ed25519.PrivateKey) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return func(o *Options) { o.SigningKey = key }, key
}

// restart mounts a fresh API (new memory: limiters, caches, refresh and
// idempotency maps) on the same store and serves it on a new port: what a
// node restart leaves of the API is what its store holds.
func (ta *testAPI) restart(key ed25519.PrivateKey) *testAPI {
	return ta.mount(Options{SigningKey: key})
}

// mount serves another API over ta's service with o (its service, clock
// and limits filled in).
func (ta *testAPI) mount(o Options) *testAPI {
	t := ta.t
	t.Helper()
	srv, err := web.New(web.Options{Logger: slog.New(slog.DiscardHandler), Metrics: metrics.NewSet()})
	if err != nil {
		t.Fatal(err)
	}
	o.Service, o.Now, o.KeyRate, o.IPRate = ta.svc, ta.clock.Now, -1, -1
	if err := Mount(srv.App(), o); err != nil {
		t.Fatal(err)
	}
	next := *ta
	next.url = webtest.Serve(t, srv)
	next.router = specRouter(t, next.url)
	next.client = &http.Client{Timeout: testHTTPTimeout, Transport: &http.Transport{}}
	t.Cleanup(next.client.CloseIdleConnections)
	return &next
}

func TestRefreshFamiliesSurviveRestart(t *testing.T) {
	t.Parallel()
	opt, key := withSigningKey(t)
	ta := startAPI(t, opt)
	t1 := ta.login()
	r := ta.do(req{method: "POST", path: "/api/v1/auth/refresh", body: refreshRequest{t1.RefreshToken}})
	wantStatus(t, r, 200)
	var t2 tokenResponse
	r.json(t, &t2)
	gone := ta.login()
	wantStatus(t, ta.do(req{method: "POST", path: "/api/v1/auth/logout", body: refreshRequest{gone.RefreshToken}}), 204)

	nb := ta.restart(key)
	// The access token and the family live on; the logged-out one stays out.
	wantStatus(t, nb.do(req{method: "GET", path: "/api/v1/plans", token: t2.AccessToken}), 200)
	wantStatus(t, nb.do(req{method: "GET", path: "/api/v1/plans", token: gone.AccessToken}), 401)
	wantStatus(t, nb.do(req{method: "POST", path: "/api/v1/auth/refresh", body: refreshRequest{gone.RefreshToken}}), 401)
	r = nb.do(req{method: "POST", path: "/api/v1/auth/refresh", body: refreshRequest{t2.RefreshToken}})
	wantStatus(t, r, 200)
	var t3 tokenResponse
	r.json(t, &t3)
	// A token spent before the restart, replayed after it, revokes the family.
	wantStatus(t, nb.do(req{method: "POST", path: "/api/v1/auth/refresh", body: refreshRequest{t1.RefreshToken}}), 401)
	wantStatus(t, nb.do(req{method: "GET", path: "/api/v1/plans", token: t3.AccessToken}), 401)
	wantStatus(t, nb.do(req{method: "POST", path: "/api/v1/auth/refresh", body: refreshRequest{t3.RefreshToken}}), 401)
	// …and that revocation is itself durable.
	again := nb.restart(key)
	wantStatus(t, again.do(req{method: "POST", path: "/api/v1/auth/refresh", body: refreshRequest{t3.RefreshToken}}), 401)
	// Only hashes are stored.
	var raw bytes.Buffer
	ta.st.Snapshot(&raw)
	for _, tok := range []string{t1.RefreshToken, t2.RefreshToken, t3.RefreshToken} {
		if bytes.Contains(raw.Bytes(), []byte(tok)) {
			t.Fatal("a refresh token in clear in the database")
		}
	}
	// Expired families are dropped when loaded.
	ta.clock.Add(DefaultRefreshTTL)
	again.restart(key)
	n := 0
	ta.st.ScanTelemetry(store.APIRefresh, "", func(k, v []byte) bool { n++; return true })
	if n != 0 {
		t.Fatalf("%d expired refresh records kept", n)
	}
}

func TestIdempotencySurvivesRestart(t *testing.T) {
	t.Parallel()
	opt, key := withSigningKey(t)
	ta := startAPI(t, opt)
	w := ta.tokens["write"]
	u := ta.user(61)
	body := vpnCreateRequest{UserID: u.ID, VPNType: "outline", IsTrial: true}
	h := map[string]string{"Idempotency-Key": "create-61"}
	first := ta.do(req{method: "POST", path: "/api/v1/vpn/create", token: w, body: body, header: h})
	wantStatus(t, first, 201)

	nb := ta.restart(key)
	again := nb.do(req{method: "POST", path: "/api/v1/vpn/create", token: w, body: body, header: h})
	wantStatus(t, again, 201)
	if !bytes.Equal(first.body, again.body) || again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("not replayed after a restart:\n%s\n%s", first.body, again.body)
	}
	ks, _, _ := ta.svc.Keys(context.Background(), storeKeyFilter(u.ID), pageAll())
	if len(ks) != 1 {
		t.Fatalf("%d keys after a retry across a restart", len(ks))
	}
	other := body
	other.VPNType = "wireguard"
	wantStatus(t, nb.do(req{method: "POST", path: "/api/v1/vpn/create", token: w, body: other, header: h}), 422)

	// The stored response holds the client configuration: sealed.
	i := bytes.Index(first.body, []byte("ss://"))
	if i < 0 {
		t.Fatalf("no ss:// link in %s", first.body)
	}
	link := first.body[i : i+bytes.IndexByte(first.body[i:], '"')]
	var raw bytes.Buffer
	ta.st.Snapshot(&raw)
	if bytes.Contains(raw.Bytes(), link) || bytes.Contains(raw.Bytes(), []byte("create-61")) {
		t.Fatal("an idempotent response or key in clear in the database")
	}
	// Another signing key (another node's data key) cannot read the record:
	// the call runs again and is refused for what it is, a second trial.
	stranger, _ := withSigningKey(t)
	o := Options{}
	stranger(&o)
	wantStatus(t, ta.restart(o.SigningKey).do(req{method: "POST", path: "/api/v1/vpn/create", token: w, body: body, header: h}), 409)

	// After the window the record is gone: pruned at the next start.
	ta.clock.Add(DefaultIdemWindow + time.Minute)
	nb.restart(key)
	n := 0
	ta.st.ScanTelemetry(store.APIIdempotency, "", func(k, v []byte) bool { n++; return true })
	if n != 0 {
		t.Fatalf("%d expired idempotency records kept", n)
	}
}

// clientFrom sends requests from a given loopback address, so tests can
// be several clients.
func clientFrom(t *testing.T, ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	c := &http.Client{Timeout: testHTTPTimeout, Transport: &http.Transport{DialContext: d.DialContext}}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func TestFailedLoginsAuditedAndSlowedPerUserAndAddress(t *testing.T) {
	t.Parallel()
	const free = 1 // each attempt costs a slow password hash
	ta := startAPI(t, func(o *Options) { o.LoginFreeTries = free })
	bad := loginRequest{Username: "admin", Password: "wrong"}
	for i := 0; i < free; i++ {
		wantStatus(t, ta.do(req{method: "POST", path: "/api/v1/auth/login", body: bad}), 401)
	}
	wantStatus(t, ta.do(req{method: "POST", path: "/api/v1/auth/login", body: bad}), 429)
	// Every failure answered is in the audit trail, with the address; the
	// refused attempt (429) wrote nothing.
	r := ta.do(req{method: "GET", path: "/api/v1/audit?limit=100", token: ta.tokens["admin"]})
	if n := strings.Count(string(r.body), `"action":"auth.login_failed/1"`); n != free || !strings.Contains(string(r.body), `127.0.0.1`) {
		t.Fatalf("%d failed logins audited: %s", n, r.body)
	}
	if strings.Contains(string(r.body), "wrong") {
		t.Fatal("a tried password in the audit trail")
	}
	// The admin at another address is not locked out by the guesser.
	other := *ta
	other.client = clientFrom(t, "127.0.0.2")
	if res, err := other.client.Get(ta.url + "/api/v1/health"); err != nil {
		t.Skipf("cannot send from 127.0.0.2: %v", err)
	} else {
		res.Body.Close()
	}
	wantStatus(t, other.do(req{method: "POST", path: "/api/v1/auth/login", body: loginRequest{Username: "admin", Password: ta.adminPassword}}), 200)
	// A guesser spread over addresses meets the per-username back-off.
	for i := 0; i < free*loginguard.UserFreeFactor; i++ {
		ip := fmt.Sprintf("127.0.1.%d", 1+i/free)
		c := other
		c.client = clientFrom(t, ip)
		if st := c.do(req{method: "POST", path: "/api/v1/auth/login", body: bad}).status; st != 401 && st != 429 {
			t.Fatalf("guess %d: %d", i, st)
		}
	}
	wantStatus(t, other.do(req{method: "POST", path: "/api/v1/auth/login", body: loginRequest{Username: "admin", Password: ta.adminPassword}}), 429)
}

func TestSharedStateAcrossListeners(t *testing.T) {
	t.Parallel()
	_, key := withSigningKey(t)
	sh := NewShared()
	base := startAPI(t)
	loop := base.mount(Options{SigningKey: key, Shared: sh})
	pub := base.mount(Options{SigningKey: key, Shared: sh})
	t1 := loop.login()
	r := pub.do(req{method: "POST", path: "/api/v1/auth/refresh", body: refreshRequest{t1.RefreshToken}})
	wantStatus(t, r, 200)
	var t2 tokenResponse
	r.json(t, &t2)
	wantStatus(t, loop.do(req{method: "GET", path: "/api/v1/plans", token: t2.AccessToken}), 200)
	// Replayed on the other listener: the family ends on both.
	wantStatus(t, loop.do(req{method: "POST", path: "/api/v1/auth/refresh", body: refreshRequest{t1.RefreshToken}}), 401)
	wantStatus(t, pub.do(req{method: "GET", path: "/api/v1/plans", token: t2.AccessToken}), 401)
	// An idempotent call retried on the other listener is replayed.
	u := base.user(71)
	h := map[string]string{"Idempotency-Key": "x-71"}
	body := createTicketBody(u.ID)
	wantStatus(t, loop.do(req{method: "POST", path: "/api/v1/tickets", token: base.tokens["write"], body: body, header: h}), 201)
	r = pub.do(req{method: "POST", path: "/api/v1/tickets", token: base.tokens["write"], body: body, header: h})
	if r.status != 201 || r.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry on the other listener: %d %s", r.status, r.body)
	}
	// A Shared is for one store and one signing key.
	_, otherKey := withSigningKey(t)
	srv, _ := web.New(web.Options{Logger: slog.New(slog.DiscardHandler), Metrics: metrics.NewSet()})
	if err := Mount(srv.App(), Options{Service: base.svc, SigningKey: otherKey, Shared: sh}); err == nil {
		t.Fatal("a Shared accepted another signing key")
	}
}

func createTicketBody(userID string) openTicketRequest {
	return openTicketRequest{UserID: userID, Subject: "s", Text: "t"}
}
