package app

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app/egress"
	"github.com/usipipo/usipipo/proxy/shadowmere"
	"github.com/usipipo/usipipo/store/model"
)

// TestFreeProxies: the service serves a real shadowmere.List fed by a
// local Shadowmere API: off without one, live entries only, by country,
// bounded, each with an importable ss:// URL and a QR code.
func TestFreeProxies(t *testing.T) {
	tn := newTestNode(t)
	ctx := context.Background()
	if _, err := tn.svc.FreeProxies(ctx, "", 5); !errors.Is(err, ErrFreeProxiesOff) || !errors.Is(err, model.ErrState) {
		t.Fatalf("no source: %v", err)
	}
	var entries []string
	countries := map[string]string{}
	for i, c := range []string{"DE", "FR", "DE"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		port := ln.Addr().(*net.TCPAddr).Port
		// rc4-md5 is checked by a TCP connect: no Shadowsocks server needed here.
		entries = append(entries, fmt.Sprintf(`{"server":"127.0.0.1","server_port":%d,"password":"pw%d","method":"rc4-md5","remarks":"p%d"}`, port, i, i))
		countries[fmt.Sprintf("127.0.0.1:%d", port)] = c
	}
	entries = append(entries, `{"server":"127.0.0.1","server_port":1,"password":"pw","method":"aes-256-gcm","remarks":"dead"}`)
	var results []string
	for addr, c := range countries {
		ap := netip.MustParseAddrPort(addr)
		results = append(results, fmt.Sprintf(`{"ip_address":"%s","port":%d,"location_country_code":"%s"}`, ap.Addr(), ap.Port(), c))
	}
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/sub/":
			fmt.Fprint(w, "["+strings.Join(entries, ",")+"]")
		case "/api/proxies/":
			fmt.Fprint(w, `{"next":null,"results":[`+strings.Join(results, ",")+`]}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer api.Close()
	d, err := egress.New(egress.Options{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := shadowmere.New(shadowmere.Options{URL: api.URL, HTTP: d.HTTPClient(2 * time.Second), Dial: d.DialContext, CheckTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	tn.svc.SetFreeProxySource(l)

	all, err := tn.svc.FreeProxies(ctx, "", 0)
	if err != nil || len(all) != 3 {
		t.Fatalf("all: %d %v", len(all), err)
	}
	de, err := tn.svc.FreeProxies(ctx, "de", 10)
	if err != nil || len(de) != 2 || de[0].Country != "DE" || de[1].Country != "DE" {
		t.Fatalf("DE: %+v %v", de, err)
	}
	one, err := tn.svc.FreeProxies(ctx, "FR", 1)
	if err != nil || len(one) != 1 {
		t.Fatalf("FR: %+v %v", one, err)
	}
	p := one[0]
	if p.Check != shadowmere.CheckTCP || p.LatencyMS <= 0 || p.CheckedAt.IsZero() || p.Remarks != "p1" {
		t.Fatalf("entry %+v", p)
	}
	// The ss:// URL carries method:password (SIP002) and the server.
	u := p.Config.Text
	user, _, _ := strings.Cut(strings.TrimPrefix(u, "ss://"), "@")
	cred, err := base64.RawURLEncoding.DecodeString(user)
	if !strings.HasPrefix(u, "ss://") || err != nil || string(cred) != "rc4-md5:pw1" ||
		!strings.Contains(u, fmt.Sprintf("@127.0.0.1:%d/", p.Port)) || p.Config.Type != model.Outline {
		t.Fatalf("config %+v (%q)", p.Config, cred)
	}
	png, err := tn.svc.QR(ctx, p.Config, 0)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("QR: %v", err)
	}
	for _, bad := range []struct {
		country string
		n       int
	}{{"Germany", 1}, {"D1", 1}, {"", MaxFreeProxies + 1}} {
		if _, err := tn.svc.FreeProxies(ctx, bad.country, bad.n); !errors.Is(err, model.ErrInvalid) {
			t.Errorf("%q/%d: %v", bad.country, bad.n, err)
		}
	}
	tn.svc.SetFreeProxySource(nil)
	if _, err := tn.svc.FreeProxies(ctx, "", 1); !errors.Is(err, ErrFreeProxiesOff) {
		t.Fatalf("after turning off: %v", err)
	}
}
