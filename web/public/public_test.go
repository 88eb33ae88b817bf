package public

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/usipipo/usipipo/vpn/outline"
	"github.com/usipipo/usipipo/web"
)

func TestSiteRoutesAndCover(t *testing.T) {
	files, pool := selfSigned(t, t.TempDir(), "vpn.test")
	src := fakeSource{
		"goodtoken": {Server: "vpn.test", Port: 8388, Secret: outline.Secret{Method: "aes-256-gcm", Password: "pw"}, Prefix: "\x16\x03"},
		"oldtoken":  {Refusal: "Esta clave de acceso expiró."},
	}
	qva := 0
	s, err := New(Options{Logger: quiet(), Dynamic: src, Host: "vpn.test", Cert: files,
		QvaPay: func(c *fiber.Ctx) error { qva++; return c.JSON(fiber.Map{"status": "ok", "id": c.Query("id")}) }})
	if err != nil {
		t.Fatal(err)
	}
	base := "https://" + serve(t, s)
	c := client(pool, "vpn.test")

	home := do(t, c, "GET", base+"/", "")
	if home.code != 200 || !strings.Contains(home.body, "<title>vpn.test</title>") ||
		home.header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("landing: %+v", home)
	}
	for h, want := range map[string]string{"Strict-Transport-Security": "max-age=31536000", "X-Content-Type-Options": "nosniff",
		"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "Server": ""} {
		if got := home.header.Get(h); got != want {
			t.Errorf("header %s = %q, want %q", h, got, want)
		}
	}
	if !strings.Contains(home.header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Errorf("no CSP: %v", home.header)
	}

	k := do(t, c, "GET", base+"/k/goodtoken", "")
	var doc map[string]any
	if err := json.Unmarshal([]byte(k.body), &doc); err != nil || k.code != 200 || doc["server"] != "vpn.test" ||
		doc["server_port"] != float64(8388) || doc["password"] != "pw" || doc["method"] != "aes-256-gcm" ||
		doc["prefix"] != "\u0016\u0003" || k.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("dynamic key: %+v %v", k, err)
	}
	ref := do(t, c, "GET", base+"/k/oldtoken", "")
	if ref.code != 200 || ref.body != `{"error":{"message":"Esta clave de acceso expiró."}}` {
		t.Fatalf("refusal: %+v", ref)
	}

	// An unknown token is any other missing page, byte for byte and header
	// for header; so are paths with no route, a directory, and methods a
	// route does not take.
	ref404 := do(t, c, "GET", base+"/no/such/page", "")
	if ref404.code != 404 || !strings.Contains(ref404.body, "404 Not Found") {
		t.Fatalf("404: %+v", ref404)
	}
	same := func(a answer) bool {
		ha, hb := maps.Clone(a.header), maps.Clone(ref404.header)
		delete(ha, "Date")
		delete(hb, "Date")
		return a.code == 404 && a.body == ref404.body && maps.EqualFunc(ha, hb, func(x, y []string) bool {
			return strings.Join(x, ",") == strings.Join(y, ",")
		})
	}
	for _, r := range [][2]string{{"GET", "/k/unknowntoken"}, {"GET", "/k/"}, {"GET", "/k"}, {"POST", "/k/goodtoken"},
		{"GET", "/tg/webhook"}, {"POST", "/tg/webhook"}, {"GET", "/api/v1/health"}, {"GET", "/api/openapi.json"},
		{"GET", "/static/"}, {"GET", "/.git/config"}, {"DELETE", "/"}} {
		if a := do(t, c, r[0], base+r[1], ""); !same(a) {
			t.Errorf("%s %s differs from a plain 404: %+v\nwant %+v", r[0], r[1], a, ref404)
		}
	}

	// QvaPay's callback (a GET with id and remote_id; a POST is accepted too).
	if a := do(t, c, "GET", base+"/pay/qvapay?id=tx1&remote_id=p1", ""); a.code != 200 || !strings.Contains(a.body, `"id":"tx1"`) {
		t.Fatalf("qvapay callback: %+v", a)
	}
	if a := do(t, c, "POST", base+"/pay/qvapay?id=tx2", ""); a.code != 200 || qva != 2 {
		t.Fatalf("qvapay POST: %+v", a)
	}

	// TLS 1.2 at least; 1.3 when the client offers it.
	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "vpn.test", MaxVersion: tls.VersionTLS11}}}
	if _, err := old.Get(base + "/"); err == nil {
		t.Fatal("TLS 1.1 accepted")
	}
	resp, err := c.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.TLS.Version != tls.VersionTLS13 {
		t.Fatalf("negotiated %x, want TLS 1.3", resp.TLS.Version)
	}
}

func TestDynamicKeyRateLimitPerAddress(t *testing.T) {
	files, pool := selfSigned(t, t.TempDir(), "vpn.test")
	s, err := New(Options{Logger: quiet(), Dynamic: fakeSource{}, Host: "vpn.test", Cert: files, KeyRate: 0.001, KeyBurst: 3})
	if err != nil {
		t.Fatal(err)
	}
	base := "https://" + serve(t, s)
	c := client(pool, "vpn.test")
	for i := range 3 {
		if a := do(t, c, "GET", base+"/k/guess", ""); a.code != 404 {
			t.Fatalf("try %d: %d", i, a.code)
		}
	}
	if a := do(t, c, "GET", base+"/k/guess", ""); a.code != 429 {
		t.Fatalf("4th try: %d, want 429", a.code)
	}
	if a := do(t, c, "GET", base+"/", ""); a.code != 200 {
		t.Fatalf("the limit reached beyond /k/: %d", a.code)
	}
	l := newIPLimiter(0.001, 1, 2)
	for _, ip := range []string{"a", "b", "c", "d"} {
		if !l.allow(ip) {
			t.Fatalf("first request of %s refused", ip)
		}
	}
	if len(l.m) > 2 {
		t.Fatalf("limiter holds %d addresses, max 2", len(l.m))
	}
}

func TestAPIAndWebhookOnlyWhenConfigured(t *testing.T) {
	files, pool := selfSigned(t, t.TempDir(), "vpn.test")
	hooked := false
	s, err := New(Options{Logger: quiet(), Dynamic: fakeSource{}, Host: "vpn.test", Cert: files,
		Webhook: func(c *fiber.Ctx) error { hooked = true; return c.SendStatus(200) },
		API: func(app *fiber.App) error {
			app.Get("/api/v1/thing", func(c *fiber.Ctx) error {
				return web.NewProblem(403, "https://usipipo.dev/problems/forbidden", "", "no scope")
			})
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	base := "https://" + serve(t, s)
	c := client(pool, "vpn.test")
	if a := do(t, c, "POST", base+"/tg/webhook", "{}"); a.code != 200 || !hooked {
		t.Fatalf("webhook: %+v", a)
	}
	a := do(t, c, "GET", base+"/api/v1/thing", "")
	var p map[string]any
	if err := json.Unmarshal([]byte(a.body), &p); err != nil || a.code != 403 || a.header.Get("Content-Type") != web.ProblemContentType ||
		p["type"] != "https://usipipo.dev/problems/forbidden" || p["detail"] != "no scope" || p["request_id"] == "" {
		t.Fatalf("problem: %+v %v", a, err)
	}
	if a := do(t, c, "GET", base+"/api/v1/missing", ""); a.code != 404 || a.header.Get("Content-Type") != web.ProblemContentType {
		t.Fatalf("missing API route: %+v", a)
	}
}

func TestACMEConfiguration(t *testing.T) {
	dir := t.TempDir() + "/acme"
	if _, err := New(Options{Logger: quiet(), Dynamic: fakeSource{}, Host: "203.0.113.7", ACME: ACME{CacheDir: dir}}); err == nil {
		t.Fatal("ACME for an IP address accepted")
	}
	// The directory is a closed local port: any ACME order fails at once.
	s, err := New(Options{Logger: quiet(), Dynamic: fakeSource{}, Host: "vpn.example.net",
		ACME: ACME{CacheDir: dir, DirectoryURL: "https://127.0.0.1:1/directory"}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("ACME cache dir: %v %v", st.Mode(), err)
	}
	cfg := s.TLSConfig()
	if cfg.MinVersion != tls.VersionTLS12 || !strings.Contains(strings.Join(cfg.NextProtos, ","), "acme-tls/1") {
		t.Fatalf("TLS config: min %x, protos %v", cfg.MinVersion, cfg.NextProtos)
	}
	// Another name is refused by the host policy before any ACME traffic.
	if _, err := cfg.GetCertificate(&tls.ClientHelloInfo{ServerName: "other.example.org"}); err == nil ||
		!strings.Contains(err.Error(), "not configured") {
		t.Fatalf("certificate for another host: %v", err)
	}
}

func TestCertificateFilesReloaded(t *testing.T) {
	dir := t.TempDir()
	files, _ := selfSigned(t, dir, "one.test")
	fc := &fileCert{files: files}
	if err := fc.load(); err != nil {
		t.Fatal(err)
	}
	first, _ := fc.get(nil)
	time.Sleep(10 * time.Millisecond) // a different modification time
	selfSigned(t, dir, "two.test")
	if c, _ := fc.get(nil); c != first {
		t.Fatal("reloaded before the check interval")
	}
	fc.mu.Lock()
	fc.checked = time.Now().Add(-2 * certCheckEvery)
	fc.mu.Unlock()
	c, _ := fc.get(nil)
	if c == first || c.Leaf == nil || c.Leaf.Subject.CommonName != "two.test" {
		t.Fatal("renewed files not picked up")
	}
	if _, err := New(Options{Logger: quiet(), Dynamic: fakeSource{}, Cert: CertFiles{Cert: files.Cert}}); err == nil {
		t.Fatal("a certificate without its key accepted")
	}
}

// brokenSource fails every lookup, as a store that cannot be read would.
type brokenSource struct{}

func (brokenSource) DynamicKey(context.Context, string) (outline.DynamicKey, error) {
	return outline.DynamicKey{}, errors.New("store closed")
}

func TestDynamicKeyLookupFailureIsNeutral(t *testing.T) {
	files, pool := selfSigned(t, t.TempDir(), "vpn.test")
	s, err := New(Options{Logger: quiet(), Dynamic: brokenSource{}, Host: "vpn.test", Cert: files})
	if err != nil {
		t.Fatal(err)
	}
	a := do(t, client(pool, "vpn.test"), "GET", "https://"+serve(t, s)+"/k/sometoken", "")
	if a.code != 503 || !strings.Contains(a.body, "<h1>503 Service Unavailable</h1>") || strings.Contains(a.body, "store") {
		t.Fatalf("failed lookup: %+v", a)
	}
}

// panicSource fails as a bug would.
type panicSource struct{}

func (panicSource) DynamicKey(context.Context, string) (outline.DynamicKey, error) { panic("bug") }

func TestPanicIsNeutralAndTokenNotLogged(t *testing.T) {
	files, pool := selfSigned(t, t.TempDir(), "vpn.test")
	var logs strings.Builder
	var mu sync.Mutex
	s, err := New(Options{Logger: slog.New(slog.NewJSONHandler(lockedWriter{&mu, &logs}, nil)), Dynamic: panicSource{}, Host: "vpn.test", Cert: files})
	if err != nil {
		t.Fatal(err)
	}
	a := do(t, client(pool, "vpn.test"), "GET", "https://"+serve(t, s)+"/k/SECRETTOKEN123456789012", "")
	mu.Lock()
	defer mu.Unlock()
	if a.code != 500 || !strings.Contains(a.body, "500 Internal Server Error") || strings.Contains(a.body, "bug") {
		t.Fatalf("panic: %+v", a)
	}
	if !strings.Contains(logs.String(), "public_http_panic") || strings.Contains(logs.String(), "SECRETTOKEN") {
		t.Fatalf("log: %s", logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
