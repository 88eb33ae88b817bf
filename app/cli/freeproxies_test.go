package cli

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app"
)

// TestProxyFreeThroughNode: a node started with --shadowmere-url fetches
// the list from a local Shadowmere API, checks the entries through its
// egress dialer (loopback allowed for the test) and `usipipo proxy free`
// prints the live ones; a node without the URL says the feature is off.
func TestProxyFreeThroughNode(t *testing.T) {
	var entries, results []string
	for i, country := range []string{"ES", "PT"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		port := ln.Addr().(*net.TCPAddr).Port
		// rc4-md5: checked by a TCP connect, so no target site is needed.
		entries = append(entries, fmt.Sprintf(`{"server":"127.0.0.1","server_port":%d,"password":"pw%d","method":"rc4-md5","remarks":"r%d"}`, port, i, i))
		results = append(results, fmt.Sprintf(`{"ip_address":"127.0.0.1","port":%d,"location_country_code":"%s"}`, port, country))
	}
	entries = append(entries, `{"server":"10.1.2.3","server_port":8388,"password":"pw","method":"aes-256-gcm","remarks":"private"}`)
	sm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/sub/" {
			fmt.Fprint(w, "["+strings.Join(entries, ",")+"]")
			return
		}
		fmt.Fprint(w, `{"next":null,"results":[`+strings.Join(results, ",")+`]}`)
	}))
	defer sm.Close()

	data := runNode(t, "", "--shadowmere-url", sm.URL+"/api/sub", "--egress-allow", "127.0.0.1/32").data
	env := map[string]string{"USIPIPO_DATA": data}
	var got []app.FreeProxy
	for deadline := time.Now().Add(10 * time.Second); len(got) < 2; time.Sleep(50 * time.Millisecond) {
		code, out, errs := runCLI(t, env, "proxy", "free", "--json")
		if code != 0 {
			t.Fatalf("proxy free: %d %q", code, errs)
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%v: %q", err, out)
		}
		if time.Now().After(deadline) {
			t.Fatalf("list not checked in 10 s: %q", out)
		}
	}
	if len(got) != 2 {
		t.Fatalf("want the 2 live entries (not the private one): %+v", got)
	}
	code, out, errs := runCLI(t, env, "proxy", "free", "--country", "pt", "--limit", "5")
	if code != 0 || !strings.Contains(out, "PT") || strings.Contains(out, "ES") || !strings.Contains(out, "ss://") {
		t.Fatalf("proxy free --country pt: %d %q %q", code, out, errs)
	}
	if code, _, errs := runCLI(t, env, "proxy", "free", "--country", "Spain"); code != 1 || !strings.Contains(errs, "ISO") {
		t.Fatalf("bad country: %d %q", code, errs)
	}

	off := runNode(t, "").data
	if code, _, errs := runCLI(t, map[string]string{"USIPIPO_DATA": off}, "proxy", "free"); code != 1 || !strings.Contains(errs, "--shadowmere-url") {
		t.Fatalf("node without a list: %d %q", code, errs)
	}
}
