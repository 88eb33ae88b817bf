package node

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/app/bot/bottest"
	"github.com/usipipo/usipipo/app/pay"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// The purchase end to end on a real node: updates come through the node's
// own poller from a stand-in Bot API; /start → plan → Stars invoice →
// pre-checkout → successful payment → the Outline key is delivered, and
// shadowsocks-libev's ss-local then carries traffic through it.
func TestBotPurchaseEndToEnd(t *testing.T) {
	const token = "777001:node-bot-test-token"
	api, err := bottest.New(token)
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	cfg := testConfig(t, filepath.Join(t.TempDir(), "data"), "--bot-token", token, "--bot-api-url", api.URL,
		"--admin-id", "555", "--public-host", "127.0.0.1", "--ss-listen", freeTCPPort(t), "--egress-allow", "127.0.0.1/32")
	r := start(t, cfg)
	svc := r.node.Service
	plan, err := svc.PutPlan(t.Context(), app.ActorCLI, app.PlanSpec{Name: "Basic", DurationDays: 30, DataCapBytes: 10 << 30,
		MaxKeys: 2, Protocols: []model.KeyType{model.WireGuard, model.Outline}, PriceStars: 100, PriceUSDCents: 299})
	if err != nil {
		t.Fatal(err)
	}
	user := bottest.User{ID: 4242, FirstName: "Ana", Username: "ana", Lang: "en"}
	// step sends an update and waits for the bot's answer to this user.
	step := func(build func(int64) json.RawMessage, match func(bottest.Event) bool) bottest.Event {
		t.Helper()
		from := api.Len()
		api.Enqueue(build)
		ev, err := api.WaitFor(from, 10*time.Second, match)
		if err != nil {
			t.Fatalf("%v; the bot did:\n%+v", err, api.Events(from))
		}
		return ev
	}
	withButton := func(label string) func(bottest.Event) bool {
		return func(e bottest.Event) bool {
			_, ok := e.FindButton(label)
			return e.Chat == user.ID && ok
		}
	}
	press := func(on bottest.Event, label, next string) bottest.Event {
		t.Helper()
		b, _ := on.FindButton(label)
		return step(bottest.Press(user, on.MessageID, b.Data), withButton(next))
	}

	ev := step(bottest.Text(user, "/start"), withButton("Buy"))
	if !strings.Contains(ev.Text, "Welcome") {
		t.Fatalf("welcome: %q", ev.Text)
	}
	ev = press(ev, "Buy", "Plans")
	ev = press(ev, "Plans", "Basic")
	ev = press(ev, "Basic", "1 month")
	ev = press(ev, "1 month", "Outline")
	ev = press(ev, "Outline", "Pay 100")
	b, _ := ev.FindButton("Pay 100")
	inv := step(bottest.Press(user, ev.MessageID, b.Data), func(e bottest.Event) bool { return e.Method == "sendInvoice" })
	payload := inv.Params["payload"].(string)
	ans := step(bottest.PreCheckout(user, "XTR", 100, payload), func(e bottest.Event) bool { return e.Method == "answerPreCheckoutQuery" })
	if ans.Params["ok"] != true {
		t.Fatalf("pre-checkout refused: %v", ans.Params)
	}
	from := api.Len()
	step(bottest.Paid(user, "XTR", 100, payload, "charge-node-1"), func(e bottest.Event) bool { return e.Method == "sendPhoto" && e.Chat == user.ID })
	var link string
	for _, e := range api.Events(from) {
		if i := strings.Index(e.Text, "ss://"); i >= 0 && e.Chat == user.ID {
			link = strings.Fields(e.Text[i:])[0]
		}
	}
	if link == "" {
		t.Fatalf("no ss:// link delivered: %+v", api.Events(from))
	}
	id, err := r.node.Pay.ParsePayload(pay.Stars, payload)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := r.node.Store.Payment(id); err != nil || p.Status != model.PayPaid || p.Product.RefID != plan.ID {
		t.Fatalf("payment: %+v %v", p, err)
	}
	u, _ := r.node.Store.UserByTelegram(user.ID)
	ks, _, _ := r.node.Store.Keys(store.KeyFilter{UserID: u.ID}, store.Page{Limit: 5})
	if len(ks) != 1 || ks[0].Type != model.Outline || ks[0].SubID == "" {
		t.Fatalf("keys: %+v", ks)
	}

	if strings.Contains(r.logs.String(), "node-bot-test-token") {
		t.Fatal("the bot token is in the logs")
	}
	if !strings.Contains(r.logs.String(), "telegram_bot_started") {
		t.Fatal("the node did not log the bot's start")
	}

	// Each update was timed by kind: the bot's response time on /metrics.
	for _, want := range []string{`usipipo_bot_update_duration_seconds_count{kind="command"} 1`,
		`usipipo_bot_update_duration_seconds_count{kind="callback"} 6`, `usipipo_bot_update_duration_seconds_count{kind="payment"} 2`} {
		waitMetric(t, r.node.Metrics, want)
	}

	// The delivered key carries traffic.
	for _, bin := range []string{"ss-local", "curl"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed (apt-get install shadowsocks-libev curl): the key was delivered but not used", bin)
		}
	}
	ss, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := base64.RawURLEncoding.DecodeString(ss.User.Username())
	if err != nil {
		t.Fatal(err)
	}
	method, password, _ := strings.Cut(string(cred), ":")
	port, _ := strconv.Atoi(ss.Port())
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("comprado y funcionando")) }))
	defer page.Close()
	if out, err := fetchThroughSS(t, ss.Hostname(), port, method, password, page.URL); err != nil || out != "comprado y funcionando" {
		t.Fatalf("through the bought key: %q %v", out, err)
	}
}

// fetchThroughSS runs ss-local with a key and fetches url through it with
// curl, retrying while the node installs the key; ss-local is stopped
// before it returns.
func fetchThroughSS(t *testing.T, server string, port int, method, password, url string) (string, error) {
	t.Helper()
	local := freeTCPPort(t)
	_, lport, _ := net.SplitHostPort(local)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	cmd := exec.CommandContext(ctx, "ss-local", "-s", server, "-p", strconv.Itoa(port), "-b", "127.0.0.1", "-l", lport,
		"-k", password, "-m", method, "-t", "10")
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	defer func() { cancel(); cmd.Wait() }()
	var last error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		b, err := exec.CommandContext(ctx, "curl", "-sS", "--max-time", "3", "--socks5-hostname", local, url).CombinedOutput()
		if err == nil {
			return string(b), nil
		}
		last = fmt.Errorf("%v: %s (ss-local: %s)", err, b, out.String())
	}
	return "", last
}

// waitMetric waits for a line of the node's /metrics: an update is timed
// just after the bot's answer that the test waited for.
func waitMetric(t *testing.T, set *metrics.Set, line string) {
	t.Helper()
	var b bytes.Buffer
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		b.Reset()
		set.WritePrometheus(&b)
		if strings.Contains(b.String(), line+"\n") {
			return
		}
	}
	t.Errorf("no %q in /metrics:\n%s", line, b.String())
}
