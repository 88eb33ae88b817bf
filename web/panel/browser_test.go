package panel_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/app/config"
	"github.com/usipipo/usipipo/app/node"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// syncBuffer collects a node's output while it runs.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// startNode runs a real node on loopback ports (extra settings override)
// and returns it with its one-time admin password and its log.
func startNode(t *testing.T, extra ...string) (*node.Node, string, *syncBuffer) {
	t.Helper()
	data := filepath.Join(t.TempDir(), "data")
	cfg, err := config.Parse(append([]string{"--data", data, "--http", "127.0.0.1:0", "--wg-listen", "127.0.0.1:0",
		"--wg-mode", "netstack", "--ss-listen", "127.0.0.1:0", "--mtproto-listen", "127.0.0.1:0",
		"--public-host", "vpn.test", "--backup-every", "0"}, extra...), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logs, term := &syncBuffer{}, &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan *node.Node, 2)
	done := make(chan error, 1)
	go func() {
		done <- node.Run(ctx, cfg, node.Options{Version: "test", Logs: logs, Terminal: term,
			Started: func(n *node.Node) { started <- n }})
	}()
	var n *node.Node
	select {
	case n = <-started:
	case err := <-done:
		t.Fatalf("node stopped: %v\n%s", err, logs.String())
	case <-time.After(60 * time.Second):
		t.Fatal("node did not start")
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("node: %v", err)
		}
	})
	m := regexp.MustCompile(`One-time password:\s+(\S+)`).FindStringSubmatch(term.String())
	if m == nil {
		t.Fatalf("no one-time password in %q", term.String())
	}
	return n, m[1], logs
}

func findChromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium on PATH: install the Debian package chromium to run the browser tests")
	return ""
}

func totpNow(seed []byte) string { return app.TOTPCode(seed, time.Now().Unix()/30) }

// nextCode waits, if needed, for a TOTP step the node has not seen in
// this test yet, so that two logins never reuse one code.
func nextCode(seed []byte, used map[string]bool) string {
	for {
		if c := totpNow(seed); !used[c] {
			used[c] = true
			return c
		}
		time.Sleep(time.Second)
	}
}

// TestBrowserPanel drives the panel in headless Chromium against a real
// node: first login with the one-time password, password change, TOTP
// enrolment with the shown key, logout, login with password + TOTP, a user
// and a key created, the key's QR image loaded, the key revoked, and the
// dashboard's charts drawn with data, without one CSP violation.
// UPDATE_SCREENSHOT=1 also saves the dashboard to docs/panel-dashboard.png.
func TestBrowserPanel(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	chrome := findChromium(t)
	n, otp, logs := startNode(t)
	base := "http://" + n.HTTPAddr.String()
	const password = "correct horse battery staple 42"

	actx, cancelA := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1360, 1500))...)
	defer cancelA()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	// The first call starts the browser and must not carry a timeout.
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting %s: %v", chrome, err)
	}
	ctx, cancelT := context.WithTimeout(bctx, 3*time.Minute)
	defer cancelT()

	fail := func(step string, err error) {
		t.Helper()
		html, _ := chromedp.Run(bctx, chromedp.OuterHTML(chromedp.CSS("body")))
		t.Fatalf("%s: %v\npage: %.1500s\nlogs: %.3000s", step, err, html, logs.String())
	}
	do := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			fail(step, err)
		}
	}
	text := func(id string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID(id)))
		if err != nil {
			fail("reading #"+id, err)
		}
		return strings.TrimSpace(v)
	}
	noCSPViolation := func(page string) {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.usipipoCSP || ["panel.js did not run"]`))
		if err != nil {
			fail("reading CSP violations on "+page, err)
		}
		if len(v) > 0 {
			t.Errorf("%s: CSP violations %v", page, v)
		}
	}
	login := func(pw, code string) {
		t.Helper()
		do("login", chromedp.Navigate(base+"/login"), chromedp.WaitVisible(chromedp.ID("username")),
			chromedp.SendKeys(chromedp.ID("username"), "admin"), chromedp.SendKeys(chromedp.ID("password"), pw),
			chromedp.SendKeys(chromedp.ID("code"), code), chromedp.Click(chromedp.ID("login")))
	}

	// First login: the one-time password leads to the password page.
	login(otp, "")
	do("password change", chromedp.WaitVisible(chromedp.ID("current")),
		chromedp.SendKeys(chromedp.ID("current"), otp), chromedp.SendKeys(chromedp.ID("new"), password),
		chromedp.SendKeys(chromedp.ID("repeat"), password), chromedp.Click(chromedp.ID("change")),
		chromedp.WaitVisible(chromedp.ID("charts")))
	noCSPViolation("dashboard")

	// Enrol TOTP with the key the page shows.
	do("TOTP enrolment", chromedp.Navigate(base+"/totp"), chromedp.WaitVisible(chromedp.ID("totp-begin")),
		chromedp.Click(chromedp.ID("totp-begin")), chromedp.WaitVisible(chromedp.ID("totp-secret")))
	secret := text("totp-secret")
	seed, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
	if err != nil {
		t.Fatalf("secret %q: %v", secret, err)
	}
	used := map[string]bool{}
	do("TOTP confirmation", chromedp.SendKeys(chromedp.CSS("input[name=password]"), password),
		chromedp.SendKeys(chromedp.ID("totp-code"), nextCode(seed, used)), chromedp.Click(chromedp.ID("totp-confirm")),
		chromedp.WaitVisible(chromedp.ID("recovery-codes")))
	if codes := text("recovery-codes"); len(strings.Fields(codes)) != app.RecoveryCodeCount {
		t.Fatalf("recovery codes %q", codes)
	}
	noCSPViolation("totp")

	// Log out; the password alone is no longer enough.
	do("logout", chromedp.Click(chromedp.CSS("header button[type=submit]")), chromedp.WaitVisible(chromedp.ID("username")))
	login(password, "")
	do("login without a code", chromedp.WaitVisible(chromedp.ID("error")))
	if msg := text("error"); !strings.Contains(msg, "code") {
		t.Fatalf("login without a code: %q", msg)
	}
	login(password, nextCode(seed, used))
	do("login with TOTP", chromedp.WaitVisible(chromedp.ID("charts")))

	// A user, a key, its QR.
	do("create user", chromedp.Navigate(base+"/users"), chromedp.WaitVisible(chromedp.ID("new-telegram-id")),
		chromedp.SendKeys(chromedp.ID("new-telegram-id"), "777001"), chromedp.SendKeys(chromedp.ID("new-username"), "maria"),
		chromedp.Click(chromedp.ID("create-user")), chromedp.WaitVisible(chromedp.ID("user-id")))
	userID := text("user-id")
	do("create key", chromedp.SetValue(chromedp.ID("new-key-type"), "wireguard"),
		chromedp.SendKeys(chromedp.ID("new-key-name"), "phone"), chromedp.Click(chromedp.ID("create-key")),
		chromedp.WaitVisible(chromedp.ID("key-qr")))
	if config, keyID := text("key-config"), text("key-id"); !strings.Contains(config, "[Interface]") || keyID == "" {
		t.Fatalf("key %q config %q", keyID, config)
	}
	qrWidth, err := chromedp.Run(ctx, chromedp.Poll[int](`(function(){var i=document.getElementById("key-qr");return i.complete && i.naturalWidth>0 ? i.naturalWidth : 0;})()`,
		chromedp.WithPollingTimeout(20*time.Second)))
	if err != nil || qrWidth < 100 {
		t.Fatalf("QR image %d px wide: %v", qrWidth, err)
	}
	noCSPViolation("key")

	// Revoke it.
	do("revoke", chromedp.SendKeys(chromedp.CSS("input[name=reason]"), "lost phone"), chromedp.Click(chromedp.ID("revoke")),
		chromedp.WaitNotPresent(chromedp.ID("key-qr")))
	if status := text("key-status"); !strings.HasPrefix(status, "revoked") {
		t.Fatalf("status after revoke: %q", status)
	}
	// A second key stays active, so the protocol chart has a bar.
	do("second key", chromedp.Navigate(base+"/users/"+userID), chromedp.WaitVisible(chromedp.ID("create-key")),
		chromedp.SetValue(chromedp.ID("new-key-type"), "outline"), chromedp.Click(chromedp.ID("create-key")),
		chromedp.WaitVisible(chromedp.ID("key-qr")))

	// Two settled purchases of that user, so the revenue chart has data.
	settle(t, n, userID, "stars", 250, "XTR")
	settle(t, n, userID, "qvapay", 399, "USD")

	// The dashboard: every chart drawn on a non-blank canvas, with data.
	// Stats are cached for up to 30 s, so the new user and key may take
	// that long to show.
	var charts []chartState
	hasData := func() bool {
		ok := len(charts) == 4
		for _, c := range charts {
			if (c.Name == "users" || c.Name == "keys" || c.Name == "revenue") && c.Points < 1 {
				ok = false
			}
		}
		return ok
	}
	for deadline := time.Now().Add(45 * time.Second); ; time.Sleep(2 * time.Second) {
		do("dashboard", chromedp.Navigate(base+"/dashboard"), chromedp.WaitVisible(chromedp.ID("charts")),
			chromedp.WaitVisible(chromedp.CSS(`#chart-keys[data-drawn="true"] canvas`)),
			chromedp.WaitVisible(chromedp.CSS(`#status table`)))
		charts, err = chromedp.Run(ctx, chromedp.Evaluate[[]chartState](`Array.from(document.querySelectorAll("[data-chart]")).map(function(el){
			var c = el.querySelector("canvas"), ink = 0;
			if (c) {
				var px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
				for (var i = 3; i < px.length; i += 4) { if (px[i] > 0) { ink++; } }
			}
			return {name: el.dataset.chart, drawn: el.dataset.drawn || "", points: Number(el.dataset.points || 0),
				width: c ? c.width : 0, ink: ink};
		})`))
		if err != nil {
			fail("reading charts", err)
		}
		// The tile comes from the same cached summary as the charts, which
		// may have been computed between the writes above.
		if (hasData() && text("users-active") == "1") || time.Now().After(deadline) {
			break
		}
	}
	if !hasData() {
		t.Fatalf("charts without data: %+v", charts)
	}
	for _, c := range charts {
		if c.Drawn != "true" || c.Width < 200 || c.Ink < 100 {
			t.Errorf("chart %+v not drawn", c)
		}
	}
	if active := text("users-active"); active != "1" {
		t.Errorf("active users tile %q", active)
	}
	noCSPViolation("dashboard")

	if os.Getenv("UPDATE_SCREENSHOT") != "" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			fail("screenshot", err)
		}
		out := filepath.Join("..", "..", "docs", "panel-dashboard.png")
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(out, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", out, len(png))
	}
}

// chartState is what the browser test reads about one dashboard chart.
type chartState struct {
	Name   string  `json:"name"`
	Drawn  string  `json:"drawn"`
	Points float64 `json:"points"`
	Width  float64 `json:"width"`
	Ink    float64 `json:"ink"`
}

// settle records a paid credits purchase of userID through the store's
// commands, as the payment service does when a provider confirms one.
func settle(t *testing.T, n *node.Node, userID, provider string, amount int64, currency string) {
	t.Helper()
	id := func() string {
		s, err := model.NewID(time.Now(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	pid, m := id(), store.Meta{At: time.Now().UTC(), Actor: "test"}
	if err := n.Store.Do(context.Background(), m, store.CreatePayment{Payment: model.Payment{ID: pid, UserID: userID,
		Provider: provider, Amount: amount, Currency: currency, Product: model.Product{Kind: "credits", Qty: 30}}}); err != nil {
		t.Fatal(err)
	}
	if err := n.Store.Do(context.Background(), m, store.SettlePayment{PaymentID: pid, ChargeID: "charge-" + pid,
		Amount: amount, Currency: currency, EntryID: id(), VestID: id()}); err != nil {
		t.Fatal(err)
	}
}
