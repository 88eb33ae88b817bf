package api

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/app/egress"
	"github.com/usipipo/usipipo/proxy/shadowmere"
)

// TestFreeProxiesEndpoint: GET /api/v1/proxies/free serves the node's
// checked Shadowmere list (a real shadowmere.List fed by a local API), by
// country and limit, read scope, and 409 on a node without the list.
func TestFreeProxiesEndpoint(t *testing.T) {
	ta := startAPI(t)
	r := ta.tokens["read"]
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/proxies/free", token: r}), 409)
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/proxies/free"}), 401)

	var entries, results []string
	for i, country := range []string{"NL", "US", "NL"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		port := ln.Addr().(*net.TCPAddr).Port
		entries = append(entries, fmt.Sprintf(`{"server":"127.0.0.1","server_port":%d,"password":"pw%d","method":"rc4-md5","remarks":"r%d"}`, port, i, i))
		results = append(results, fmt.Sprintf(`{"ip_address":"127.0.0.1","port":%d,"location_country_code":"%s"}`, port, country))
	}
	sm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/sub/" {
			fmt.Fprint(w, "["+strings.Join(entries, ",")+"]")
			return
		}
		fmt.Fprint(w, `{"next":null,"results":[`+strings.Join(results, ",")+`]}`)
	}))
	defer sm.Close()
	d, err := egress.New(egress.Options{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := shadowmere.New(shadowmere.Options{URL: sm.URL, HTTP: d.HTTPClient(2 * time.Second), Dial: d.DialContext})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	ta.svc.SetFreeProxySource(l)

	var out struct {
		Items []app.FreeProxy `json:"items"`
	}
	res := ta.do(req{method: "GET", path: "/api/v1/proxies/free", token: r})
	wantStatus(t, res, 200)
	res.json(t, &out)
	if len(out.Items) != 3 {
		t.Fatalf("all: %s", res.body)
	}
	res = ta.do(req{method: "GET", path: "/api/v1/proxies/free?country=nl&limit=1", token: r})
	wantStatus(t, res, 200)
	res.json(t, &out)
	if len(out.Items) != 1 || out.Items[0].Country != "NL" || !strings.HasPrefix(out.Items[0].Config.Text, "ss://") {
		t.Fatalf("NL, 1: %s", res.body)
	}
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/proxies/free?limit=0", token: r}), 400)
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/proxies/free?limit=51", token: r}), 400)
	ta.validate = false // the document's pattern already refuses it: check the handler too
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/proxies/free?country=xyz", token: r}), 422)
}
