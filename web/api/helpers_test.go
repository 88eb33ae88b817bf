package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/app/apptest"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
	"github.com/usipipo/usipipo/web"
	"github.com/usipipo/usipipo/web/webtest"
)

// testAPI is a node's service layer, web server and API on 127.0.0.1:0
// with a real store.
type testAPI struct {
	t      *testing.T
	svc    *app.Service
	st     *store.Store
	clock  *apptest.Clock
	url    string
	client *http.Client
	router routers.Router
	// validate checks every response against the OpenAPI document.
	validate bool

	adminPassword string
	tokens        map[string]string // API tokens by scope
}

type option func(*Options)

// testHTTPTimeout bounds one test request. Generous: on a loaded 2-core
// machine under -race a login (a slow password hash, sometimes two, and a
// durable write) can queue behind other tests' for seconds; only a hang
// should trip it.
const testHTTPTimeout = 60 * time.Second

func startAPI(t *testing.T, opts ...option) *testAPI {
	t.Helper()
	n := apptest.New(t)
	// These tests have always run from the real time, not apptest.Start.
	n.Clock.Set(time.Now().UTC().Truncate(time.Second))
	svc, st, clk := n.Svc, n.Store, n.Clock
	logger := slog.New(slog.DiscardHandler)
	srv, err := web.New(web.Options{Logger: logger, Metrics: metrics.NewSet()})
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Service: svc, Now: clk.Now, Logger: logger, KeyRate: -1, IPRate: -1}
	for _, f := range opts {
		f(&o)
	}
	if err := Mount(srv.App(), o); err != nil {
		t.Fatal(err)
	}
	ta := &testAPI{t: t, svc: svc, st: st, clock: clk, url: webtest.Serve(t, srv), validate: true,
		client: &http.Client{Timeout: testHTTPTimeout, Transport: &http.Transport{}}, tokens: map[string]string{}}
	t.Cleanup(func() { ta.client.CloseIdleConnections() })
	ta.router = specRouter(t, ta.url)
	otp, err := svc.ResetAdminPassword(context.Background(), app.ActorCLI, "admin")
	if err != nil {
		t.Fatal(err)
	}
	ta.adminPassword = "test-admin-password"
	if err := svc.ChangeAdminPassword(context.Background(), app.ActorCLI, "admin", otp, ta.adminPassword); err != nil {
		t.Fatal(err)
	}
	for _, s := range []model.Scope{model.ScopeRead, model.ScopeWrite, model.ScopeAdmin} {
		k, err := svc.CreateAPIKey(context.Background(), app.ActorCLI, "test-"+string(s), []model.Scope{s}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		ta.tokens[string(s)] = k.Token
	}
	return ta
}

var (
	specOnce   sync.Once
	specLoaded *openapi3.T
	specErr    error
)

// specDoc is the embedded OpenAPI document, loaded and validated once.
// Callers must not modify it.
func specDoc(t testing.TB) *openapi3.T {
	t.Helper()
	specOnce.Do(func() {
		specLoaded, specErr = openapi3.NewLoader().LoadFromData(Spec())
		if specErr == nil {
			specErr = specLoaded.Validate(context.Background())
		}
	})
	if specErr != nil {
		t.Fatalf("the OpenAPI document does not load or is invalid: %v", specErr)
	}
	return specLoaded
}

func specRouter(t testing.TB, base string) routers.Router {
	doc := *specDoc(t) // shallow copy: only Servers differs
	doc.Servers = openapi3.Servers{{URL: base}}
	r, err := gorillamux.NewRouter(&doc)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// resp is a received response.
type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r *resp) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
}

func (r *resp) problemType() string {
	var p struct {
		Type string `json:"type"`
	}
	json.Unmarshal(r.body, &p)
	return strings.TrimPrefix(p.Type, ProblemBase)
}

// req is a request to make.
type req struct {
	method, path, token string
	body                any
	header              map[string]string
}

// do sends a request and validates the response against the spec.
func (ta *testAPI) do(r req) *resp {
	ta.t.Helper()
	var body io.Reader
	var raw []byte
	switch b := r.body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	case []byte:
		raw = b
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			ta.t.Fatal(err)
		}
	}
	if raw != nil {
		body = bytes.NewReader(raw)
	}
	hr, err := http.NewRequest(r.method, ta.url+r.path, body)
	if err != nil {
		ta.t.Fatal(err)
	}
	if raw != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if r.token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.token)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	res, err := ta.client.Do(hr)
	if err != nil {
		ta.t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		ta.t.Fatal(err)
	}
	out := &resp{status: res.StatusCode, header: res.Header, body: b}
	if ta.validate {
		ta.check(hr, raw, out)
	}
	return out
}

// check validates a response against the OpenAPI document: its status
// must be documented for the route, and its body must match the schema.
func (ta *testAPI) check(hr *http.Request, reqBody []byte, r *resp) {
	ta.t.Helper()
	route, params, err := ta.router.FindRoute(hr)
	if err != nil {
		ta.t.Errorf("%s %s: no route in the OpenAPI document: %v", hr.Method, hr.URL.Path, err)
		return
	}
	noteAnswered(route.Method, route.Path, r.status)
	if reqBody != nil {
		hr.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	opts := &openapi3filter.Options{IncludeResponseStatus: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}
	ct := r.header.Get("Content-Type")
	if !strings.Contains(ct, "json") {
		opts.ExcludeResponseBody = true
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: hr, PathParams: params, Route: route, Options: opts},
		Status:                 r.status, Header: r.header, Options: opts,
	}
	in.SetBodyBytes(r.body)
	if strings.HasPrefix(ct, "application/problem+json") {
		// kin-openapi picks the schema by media type; problem+json is JSON.
		in.Header = r.header.Clone()
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		ta.t.Errorf("%s %s → %d does not match the OpenAPI document: %v\nbody: %.300s", hr.Method, hr.URL.Path, r.status, err, r.body)
	}
}

// login logs the admin in and returns the tokens.
func (ta *testAPI) login() tokenResponse {
	ta.t.Helper()
	r := ta.do(req{method: "POST", path: "/api/v1/auth/login", body: loginRequest{Username: "admin", Password: ta.adminPassword}})
	if r.status != 200 {
		ta.t.Fatalf("login: %d %s", r.status, r.body)
	}
	var tok tokenResponse
	r.json(ta.t, &tok)
	return tok
}

// user registers a user through the service layer.
func (ta *testAPI) user(tg int64) *app.UserView {
	ta.t.Helper()
	u, err := ta.svc.RegisterUser(context.Background(), app.ActorCLI, app.NewUser{TelegramID: tg, Username: "u", FirstName: "Ana"})
	if err != nil {
		ta.t.Fatal(err)
	}
	return u
}

func wantStatus(t *testing.T, r *resp, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
}

func storeKeyFilter(userID string) store.KeyFilter { return store.KeyFilter{UserID: userID} }
func pageAll() store.Page                          { return store.Page{Limit: store.MaxLimit} }
