package node

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/app/bot/bottest"
	"github.com/usipipo/usipipo/app/pay"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// methodLog is a proxy in front of the fake Bot API that records every
// method called, getUpdates included (the fake records only the others).
type methodLog struct {
	mu      sync.Mutex
	methods []string
}

func (m *methodLog) front(t *testing.T, target string) *httptest.Server {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0) // long polls cancelled at shutdown
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		m.methods = append(m.methods, r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:])
		m.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (m *methodLog) index(method string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Index(m.methods, method)
}

// Webhook mode end to end on a real node: it registers the webhook with
// the (stand-in) Bot API and never polls; updates posted to /tg/webhook on
// the public HTTPS listener with the secret reach the bot once each;
// requests without it are refused and store nothing; the token's lock is
// held; started again in poll mode the node deletes the webhook first.
func TestTelegramWebhookMode(t *testing.T) {
	const token = "777002:node-webhook-test-token"
	api, err := bottest.New(token)
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	calls, forms := &methodLog{}, &formLog{}
	front := forms.front(t, calls.front(t, api.URL).URL)
	dir := t.TempDir()
	cert, key, pool := certFiles(t, dir)
	data := filepath.Join(dir, "data")
	args := []string{"--bot-token", token, "--bot-api-url", front.URL, "--public-listen", "127.0.0.1:0",
		"--tls-cert", cert, "--tls-key", key}
	r := start(t, testConfig(t, data, append(args, "--bot-webhook")...))

	set, err := api.WaitFor(0, 10*time.Second, func(e bottest.Event) bool { return e.Method == "setWebhook" })
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(data, webhookSecretFile))
	if err != nil {
		t.Fatal(err)
	}
	secret := strings.TrimSpace(string(b))
	if st, _ := os.Stat(filepath.Join(data, webhookSecretFile)); st.Mode().Perm() != 0o600 || len(secret) < 32 {
		t.Fatalf("secret file: mode %v, %d characters", st.Mode().Perm(), len(secret))
	}
	// certFiles' certificate is self-signed: it is uploaded, the leaf
	// alone, with the other parameters as form fields.
	port := r.node.PublicAddr().(*net.TCPAddr).Port
	checkSetWebhook(t, set, fmt.Sprintf("https://vpn.test:%d/tg/webhook", port), secret, leafPEM(t, cert))
	if ups := forms.uploads(); len(ups) != 1 {
		t.Fatalf("%d multipart setWebhook calls", len(ups))
	} else {
		checkUpload(t, ups[0], leafPEM(t, cert))
	}

	https := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "vpn.test"}}}
	hook := "https://" + r.node.PublicAddr().String() + "/tg/webhook"
	post := func(body json.RawMessage, secret string) int {
		t.Helper()
		req, _ := http.NewRequest("POST", hook, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if secret != "" {
			req.Header.Set("X-Telegram-Bot-Api-Secret-Token", secret)
		}
		resp, err := https.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	user := bottest.User{ID: 5151, FirstName: "Eva", Lang: "en"}
	welcome := func(e bottest.Event) bool { return e.Chat == user.ID && strings.Contains(e.Text, "Welcome") }
	first := bottest.Text(user, "/start")(1001) // the fake numbers its own (polled) updates from 1

	for _, wrong := range []string{"", "wrong", secret[:len(secret)-1], secret + "A"} {
		if code := post(first, wrong); code != http.StatusUnauthorized {
			t.Fatalf("secret %q: %d, want 401", wrong, code)
		}
	}
	suffix := fmt.Sprintf("%020d", 1001)
	r.node.Store.ScanTelemetry(store.Updates, "", func(k, _ []byte) bool {
		if strings.HasSuffix(string(k), suffix) {
			t.Errorf("a refused update was stored: %s", k)
		}
		return true
	})

	if code := post(first, secret); code != http.StatusOK {
		t.Fatalf("webhook: %d", code)
	}
	from := api.Len()
	if _, err := api.WaitFor(0, 10*time.Second, welcome); err != nil {
		t.Fatalf("%v; the bot did %+v", err, api.Events(0))
	}
	// Telegram delivers update 1001 again, then 1002 (/help) of the same
	// user: handled in order, so once /help is answered a second welcome
	// would already have been sent.
	if code := post(first, secret); code != http.StatusOK {
		t.Fatalf("redelivery: %d", code)
	}
	if code := post(bottest.Text(user, "/help")(1002), secret); code != http.StatusOK {
		t.Fatalf("webhook: %d", code)
	}
	if _, err := api.WaitFor(from, 10*time.Second, func(e bottest.Event) bool { return e.Chat == user.ID && !welcome(e) }); err != nil {
		t.Fatalf("/help: %v; the bot did %+v", err, api.Events(from))
	}
	n := 0
	for _, e := range api.Events(0) {
		if welcome(e) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("update 1001 was handled %d times", n)
	}
	// A Stars purchase through the webhook: the payment service sees these
	// updates as it sees polled ones, and grants once.
	plan, err := r.node.Service.PutPlan(t.Context(), app.ActorCLI, app.PlanSpec{Name: "Basic", DurationDays: 30, DataCapBytes: 1 << 30,
		MaxKeys: 1, Protocols: []model.KeyType{model.Outline}, PriceStars: 100, PriceUSDCents: 199})
	if err != nil {
		t.Fatal(err)
	}
	u, err := r.node.Store.UserByTelegram(user.ID)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := r.node.Pay.SendStarsInvoice(t.Context(), "test", u.ID, pay.Product{Kind: pay.KindPlan, RefID: plan.ID, Months: 1})
	if err != nil {
		t.Fatal(err)
	}
	sent, err := api.WaitFor(0, 10*time.Second, func(e bottest.Event) bool { return e.Method == "sendInvoice" })
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := sent.Params["payload"].(string)
	from = api.Len()
	if code := post(bottest.PreCheckout(user, "XTR", 100, payload)(1003), secret); code != http.StatusOK {
		t.Fatalf("pre-checkout: %d", code)
	}
	if ans, err := api.WaitFor(from, 10*time.Second, func(e bottest.Event) bool { return e.Method == "answerPreCheckoutQuery" }); err != nil || ans.Params["ok"] != true {
		t.Fatalf("pre-checkout answer %+v %v", ans.Params, err)
	}
	for id := int64(1004); id <= 1005; id++ { // the second: another update for the same charge
		if code := post(bottest.Paid(user, "XTR", 100, payload, "charge-webhook-1")(id), secret); code != http.StatusOK {
			t.Fatalf("successful_payment: %d", code)
		}
	}
	receipted := func(id int64) bool {
		b, _ := r.node.Store.GetTelemetry(store.Updates, fmt.Sprintf("d/%020d", id))
		return b != nil
	}
	for deadline := time.Now().Add(10 * time.Second); !receipted(1004) || !receipted(1005); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the payment updates were not processed")
		}
	}
	if p, err := r.node.Store.Payment(inv.PaymentID); err != nil || p.Status != model.PayPaid {
		t.Fatalf("payment %+v %v", p, err)
	}
	if subs, _, err := r.node.Store.Subscriptions(u.ID, store.Page{Limit: 5}); err != nil || len(subs) != 1 || subs[0].PlanID != plan.ID {
		t.Fatalf("subscriptions granted: %+v %v, want one", subs, err)
	}

	if i := calls.index("getUpdates"); i >= 0 {
		t.Fatal("the node polls in webhook mode")
	}

	// The token's lock is held: no other process may poll it.
	locks, _ := filepath.Glob(filepath.Join(data, "tgpoll-*.lock"))
	if len(locks) != 1 {
		t.Fatalf("lock files %v", locks)
	}
	fd, err := syscall.Open(locks[0], syscall.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB); !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Fatalf("the token's lock is free in webhook mode (flock: %v)", err)
	}
	syscall.Close(fd)
	r.stop()
	for _, s := range []string{secret, "node-webhook-test-token"} {
		if strings.Contains(r.logs.String(), s) {
			t.Fatalf("a secret is in the logs")
		}
	}

	// Poll mode again: the webhook is deleted (keeping Telegram's queue)
	// before the first getUpdates, and polled updates reach the bot.
	r2 := start(t, testConfig(t, data, args...))
	del, err := api.WaitFor(0, 10*time.Second, func(e bottest.Event) bool { return e.Method == "deleteWebhook" })
	if err != nil {
		t.Fatal(err)
	}
	if del.Params["drop_pending_updates"] != false {
		t.Fatalf("deleteWebhook %v", del.Params)
	}
	from = api.Len()
	api.Enqueue(bottest.Text(user, "/start"))
	if _, err := api.WaitFor(from, 10*time.Second, welcome); err != nil {
		t.Fatalf("polled /start: %v", err)
	}
	if d, g := calls.index("deleteWebhook"), calls.index("getUpdates"); d < 0 || g < d {
		t.Fatalf("deleteWebhook at %d, first getUpdates at %d", d, g)
	}
	r2.stop()
}

func TestWebhookURL(t *testing.T) {
	for _, tc := range []struct {
		host string
		port int
		want string
	}{
		{"vpn.example.com", 443, "https://vpn.example.com/tg/webhook"},
		{"vpn.example.com", 8443, "https://vpn.example.com:8443/tg/webhook"},
		{"2001:db8::7", 443, "https://[2001:db8::7]/tg/webhook"},
		{"2001:db8::7", 88, "https://[2001:db8::7]:88/tg/webhook"},
	} {
		if got := webhookURL(tc.host, tc.port); got != tc.want {
			t.Errorf("%s %d: %q, want %q", tc.host, tc.port, got, tc.want)
		}
	}
}

// The secret is made once, kept 0600, and refused when others may read it
// or it was tampered with.
func TestWebhookSecretFile(t *testing.T) {
	dir := t.TempDir()
	s1, err := loadWebhookSecret(dir)
	if err != nil || len(s1) != webhookSecretLen {
		t.Fatalf("%q %v", s1, err)
	}
	if s2, err := loadWebhookSecret(dir); err != nil || s2 != s1 {
		t.Fatalf("second load %q %v", s2, err)
	}
	path := filepath.Join(dir, webhookSecretFile)
	os.Chmod(path, 0o644)
	if _, err := loadWebhookSecret(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable: %v", err)
	}
	os.WriteFile(path, []byte("short\n"), 0o600)
	os.Chmod(path, 0o600)
	if _, err := loadWebhookSecret(dir); err == nil || strings.Contains(err.Error(), "short") {
		t.Fatalf("malformed: %v", err)
	}
}
