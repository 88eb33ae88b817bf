package api

import (
	"context"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"
	"github.com/getkin/kin-openapi/openapi3filter"

	"github.com/usipipo/usipipo/web"
)

var fiberParam = regexp.MustCompile(`:([A-Za-z_]+)`)

// adminAuthPaths are the routes under /api/v1/auth/ that need an admin
// login; the others (login, refresh, logout) are public.
var adminAuthPaths = map[string]bool{"/api/v1/auth/password": true, "/api/v1/auth/totp": true, "/api/v1/auth/totp/confirm": true}

// TestContractRoutes walks every fiber route under /api and fails when the
// OpenAPI document lacks it, and every documented operation that no route
// serves.
func TestContractRoutes(t *testing.T) {
	t.Parallel()
	ta := startAPI(t)
	srv, err := web.New(web.Options{Logger: slog.New(slog.DiscardHandler), Metrics: metrics.NewSet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := Mount(srv.App(), Options{Service: ta.svc}); err != nil {
		t.Fatal(err)
	}
	doc := specDoc(t)
	routed := map[string]bool{}
	n := 0
	for _, r := range srv.App().GetRoutes(true) {
		if !strings.HasPrefix(r.Path, "/api") || r.Method == http.MethodHead {
			continue
		}
		n++
		path := fiberParam.ReplaceAllString(r.Path, "{$1}")
		routed[r.Method+" "+path] = true
		item := doc.Paths.Find(path)
		if item == nil || item.GetOperation(r.Method) == nil {
			t.Errorf("route %s %s is not in the OpenAPI document", r.Method, path)
			continue
		}
		op := item.GetOperation(r.Method)
		public := op.Security != nil && len(*op.Security) == 0
		if want := !strings.HasPrefix(path, "/api/v1/") || (strings.HasPrefix(path, "/api/v1/auth/") && !adminAuthPaths[path]) || path == "/api/v1/health"; public != want {
			t.Errorf("%s %s: documented public=%v, want %v", r.Method, path, public, want)
		}
	}
	if n < 40 {
		t.Fatalf("only %d routes found under /api", n)
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			if !routed[method+" "+path] {
				t.Errorf("documented %s %s has no route", method, path)
			}
		}
	}
}

// TestContractCatchesDrift checks that the response validation used by
// every test really rejects what the document does not allow.
func TestContractCatchesDrift(t *testing.T) {
	t.Parallel()
	ta := startAPI(t)
	hr, _ := http.NewRequest("GET", ta.url+"/api/v1/plans", nil)
	route, params, err := ta.router.FindRoute(hr)
	if err != nil {
		t.Fatal(err)
	}
	opts := &openapi3filter.Options{IncludeResponseStatus: true}
	for _, tc := range []struct {
		status int
		body   string
	}{
		{418, `{}`},
		{200, `{"items": "no"}`},
		{200, `{"items": []}`},
		{401, `{"title": "x"}`},
	} {
		in := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: &openapi3filter.RequestValidationInput{Request: hr, PathParams: params, Route: route, Options: opts},
			Status:                 tc.status, Header: http.Header{"Content-Type": {"application/json"}}, Options: opts}
		if tc.status >= 400 {
			in.Header.Set("Content-Type", "application/problem+json")
		}
		in.SetBodyBytes([]byte(tc.body))
		if err := openapi3filter.ValidateResponse(context.Background(), in); err == nil {
			t.Errorf("%d %s passed validation", tc.status, tc.body)
		}
	}
}
