package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/app/pay"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/keyring"
	"github.com/usipipo/usipipo/store/model"
)

// fakeBotAPI is a local Telegram Bot API: POST /bot<token>/<method> with a
// JSON body, answered {"ok":true,"result":…} or an error description.
type fakeBotAPI struct {
	url string

	mu    sync.Mutex
	calls []string
	fail  string // description to fail refundStarPayment with
}

func startFakeBotAPI(t *testing.T) *fakeBotAPI {
	t.Helper()
	f := &fakeBotAPI{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || r.Method != http.MethodPost {
			w.WriteHeader(400)
			fmt.Fprint(w, `{"ok":false,"error_code":400,"description":"Bad Request: bad body"}`)
			return
		}
		f.mu.Lock()
		f.calls = append(f.calls, method)
		fail := f.fail
		f.mu.Unlock()
		switch {
		case method == "refundStarPayment" && fail != "":
			w.WriteHeader(400)
			fmt.Fprintf(w, `{"ok":false,"error_code":400,"description":%q}`, fail)
		case method == "sendMessage":
			fmt.Fprint(w, `{"ok":true,"result":{"message_id":1,"date":0,"chat":{"id":1,"type":"private"}}}`)
		default:
			fmt.Fprint(w, `{"ok":true,"result":true}`)
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	f.url = "http://" + ln.Addr().String()
	return f
}

func (f *fakeBotAPI) called(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c == method {
			n++
		}
	}
	return n
}

// withPay gives the API a payment service whose Stars calls go to bot.
func withPay(t *testing.T, bot *fakeBotAPI) option {
	return func(o *Options) {
		dk, err := keyring.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		ps, err := pay.New(pay.Options{Store: o.Service.Store(), DataKey: dk, BotToken: "123:test-token-aaaaaaaaaaaaaaaa",
			BotAPIURL: bot.url, Now: o.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ps.Close() })
		o.Pay = ps
	}
}

// paid records a settled payment straight in the store, as a provider's
// settlement would.
func (ta *testAPI) paid(userID, provider, currency string, amount int64) string {
	ta.t.Helper()
	id, err := model.NewID(ta.clock.Now(), nil)
	if err != nil {
		ta.t.Fatal(err)
	}
	m := store.Meta{At: ta.clock.Now(), Actor: "test"}
	ctx := context.Background()
	if err := ta.st.Do(ctx, m, store.CreatePayment{Payment: model.Payment{ID: id, UserID: userID, Provider: provider,
		Amount: amount, Currency: currency, Product: model.Product{Kind: "slots", Qty: 1}}}); err != nil {
		ta.t.Fatal(err)
	}
	if err := ta.st.Do(ctx, m, store.SettlePayment{PaymentID: id, ChargeID: "ch-" + id, Amount: amount, Currency: currency}); err != nil {
		ta.t.Fatal(err)
	}
	return id
}

func TestPayments(t *testing.T) {
	t.Parallel()
	bot := startFakeBotAPI(t)
	ta := startAPI(t, withPay(t, bot))
	adm, w := ta.tokens["admin"], ta.tokens["write"]
	u, v := ta.user(41), ta.user(42)
	stars := ta.paid(u.ID, pay.Stars, pay.XTR, 150)
	qva := ta.paid(u.ID, pay.QvaPay, pay.USD, 499)
	ta.paid(v.ID, pay.Stars, pay.XTR, 50)

	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/payments"}), 401)
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/payments", token: w}), 403)
	r := ta.do(req{method: "GET", path: "/api/v1/payments?limit=2", token: adm})
	wantStatus(t, r, 200)
	var l list[model.Payment]
	r.json(t, &l)
	if len(l.Items) != 2 || l.Next == "" {
		t.Fatalf("first page %s", r.body)
	}
	r = ta.do(req{method: "GET", path: "/api/v1/payments?limit=2&after=" + l.Next, token: adm})
	r.json(t, &l)
	if len(l.Items) != 1 || l.Next != "" {
		t.Fatalf("second page %s", r.body)
	}
	r = ta.do(req{method: "GET", path: "/api/v1/payments?user_id=" + u.ID + "&provider=qvapay", token: adm})
	r.json(t, &l)
	if len(l.Items) != 1 || l.Items[0].ID != qva || l.Items[0].Payload != "" {
		t.Fatalf("filtered %s", r.body)
	}
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/payments?status=lost", token: adm}), 422)

	r = ta.do(req{method: "GET", path: "/api/v1/payments/" + stars, token: adm})
	wantStatus(t, r, 200)
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/payments/" + stars, token: adm, header: map[string]string{"If-None-Match": r.header.Get("ETag")}}), 304)
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/payments/" + strings.Repeat("2", 26), token: adm}), 404)

	// Refunds: Stars through Telegram; others need the outside refund's id.
	wantStatus(t, ta.do(req{method: "POST", path: "/api/v1/payments/" + stars + "/refund", token: w}), 403)
	r = ta.do(req{method: "POST", path: "/api/v1/payments/" + stars + "/refund", token: adm})
	wantStatus(t, r, 200)
	var p model.Payment
	r.json(t, &p)
	if p.Status != model.PayRefunded || bot.called("refundStarPayment") != 1 {
		t.Fatalf("stars refund %s, %d calls", r.body, bot.called("refundStarPayment"))
	}
	wantStatus(t, ta.do(req{method: "POST", path: "/api/v1/payments/" + qva + "/refund", token: adm}), 422)
	r = ta.do(req{method: "POST", path: "/api/v1/payments/" + qva + "/refund", token: adm, body: refundRequest{RefundID: "qvapay-r-1"}})
	wantStatus(t, r, 200)
	r.json(t, &p)
	if p.Status != model.PayRefunded {
		t.Fatalf("recorded refund %s", r.body)
	}
	r = ta.do(req{method: "GET", path: "/api/v1/payments?status=refunded", token: adm})
	r.json(t, &l)
	if len(l.Items) != 2 {
		t.Fatalf("refunded filter %s", r.body)
	}
	// Telegram refuses: a 502 naming the provider, nothing changes.
	other := ta.paid(v.ID, pay.Stars, pay.XTR, 70)
	bot.mu.Lock()
	bot.fail = "Bad Request: CHARGE_NOT_FOUND"
	bot.mu.Unlock()
	r = ta.do(req{method: "POST", path: "/api/v1/payments/" + other + "/refund", token: adm})
	wantStatus(t, r, 502)
	if got, _ := ta.st.Payment(other); got.Status != model.PayPaid {
		t.Fatalf("payment changed after a refused refund: %s", got.Status)
	}
}

func TestPaymentsWithoutPayService(t *testing.T) {
	t.Parallel()
	ta := startAPI(t)
	adm := ta.tokens["admin"]
	u := ta.user(43)
	id := ta.paid(u.ID, pay.Stars, pay.XTR, 10)
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/payments/" + id, token: adm}), 200)
	r := ta.do(req{method: "POST", path: "/api/v1/payments/" + id + "/refund", token: adm})
	wantStatus(t, r, 503)
	if r.problemType() != "unavailable" {
		t.Fatalf("type %q", r.problemType())
	}
	wantStatus(t, ta.do(req{method: "PUT", path: "/api/v1/settings/qvapay", token: adm, body: qvaPayRequest{AppID: "a", Secret: "s"}}), 503)
	wantStatus(t, ta.do(req{method: "PUT", path: "/api/v1/settings/catalogue", token: adm, body: pay.DefaultCatalogue()}), 503)
	r = ta.do(req{method: "GET", path: "/api/v1/settings", token: adm})
	wantStatus(t, r, 200)
	if bytes.Contains(r.body, []byte(`"catalogue"`)) {
		t.Fatalf("catalogue without payments: %s", r.body)
	}
}

func TestSettings(t *testing.T) {
	t.Parallel()
	ta := startAPI(t, withPay(t, startFakeBotAPI(t)))
	adm, w := ta.tokens["admin"], ta.tokens["write"]
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/settings", token: w}), 403)
	r := ta.do(req{method: "GET", path: "/api/v1/settings", token: adm})
	wantStatus(t, r, 200)
	var s settingsResponse
	r.json(t, &s)
	if !s.Policy.TrialsEnabled || s.Catalogue == nil || s.Secrets["bot_token"].Set || s.Secrets["qvapay"].Set {
		t.Fatalf("defaults %s", r.body)
	}
	tag := r.header.Get("ETag")

	pol := app.DefaultPolicy()
	pol.TrialDays, pol.TrialsEnabled = 5, false
	wantStatus(t, ta.do(req{method: "PUT", path: "/api/v1/settings/policy", token: w, body: pol}), 403)
	r = ta.do(req{method: "PUT", path: "/api/v1/settings/policy", token: adm, body: pol})
	wantStatus(t, r, 200)
	if got := ta.svc.Policy(); got.TrialDays != 5 || got.TrialsEnabled {
		t.Fatalf("policy not stored: %+v", got)
	}
	pol.TrialDays = 1000
	wantStatus(t, ta.do(req{method: "PUT", path: "/api/v1/settings/policy", token: adm, body: pol}), 422)
	wantStatus(t, ta.do(req{method: "PUT", path: "/api/v1/settings/policy", token: adm, body: `{"trial_days":"x"}`}), 400)
	wantStatus(t, ta.do(req{method: "PUT", path: "/api/v1/settings/policy", token: adm, body: `{"nope":1}`}), 400)

	cat := pay.DefaultCatalogue()
	cat.MaxSlots = 9
	r = ta.do(req{method: "PUT", path: "/api/v1/settings/catalogue", token: adm, body: cat})
	wantStatus(t, r, 200)
	cat.MaxMonths = 0
	wantStatus(t, ta.do(req{method: "PUT", path: "/api/v1/settings/catalogue", token: adm, body: cat}), 422)

	// Secrets: accepted, stored sealed, never returned.
	const token = "123456:AAE-very-secret-bot-token_xyz"
	wantStatus(t, ta.do(req{method: "PUT", path: "/api/v1/settings/bot-token", token: adm, body: botTokenRequest{Token: "nope"}}), 422)
	wantStatus(t, ta.do(req{method: "PUT", path: "/api/v1/settings/bot-token", token: w, body: botTokenRequest{Token: token}}), 403)
	wantStatus(t, ta.do(req{method: "PUT", path: "/api/v1/settings/bot-token", token: adm, body: botTokenRequest{Token: token}}), 204)
	wantStatus(t, ta.do(req{method: "PUT", path: "/api/v1/settings/qvapay", token: adm, body: qvaPayRequest{AppID: "app-1", Secret: "qva-secret-value"}}), 204)
	wantStatus(t, ta.do(req{method: "PUT", path: "/api/v1/settings/qvapay", token: adm, body: qvaPayRequest{AppID: "app-1"}}), 422)
	if got, err := ta.svc.StoredBotToken(); err != nil || got != token {
		t.Fatalf("stored token %q %v", got, err)
	}
	r = ta.do(req{method: "GET", path: "/api/v1/settings", token: adm, header: map[string]string{"If-None-Match": tag}})
	wantStatus(t, r, 200)
	r.json(t, &s)
	if !s.Secrets["bot_token"].Set || !s.Secrets["qvapay"].Set || s.Catalogue.MaxSlots != 9 || s.Policy.TrialDays != 5 {
		t.Fatalf("after writes %s", r.body)
	}
	var raw bytes.Buffer
	ta.st.Snapshot(&raw)
	for _, secret := range []string{token, "qva-secret-value"} {
		if bytes.Contains(r.body, []byte(secret)) || bytes.Contains(raw.Bytes(), []byte(secret)) {
			t.Fatalf("secret %q readable in a response or the database", secret)
		}
	}
	// The audit trail has the writes, without the secrets.
	r = ta.do(req{method: "GET", path: "/api/v1/audit?limit=50", token: adm})
	if !bytes.Contains(r.body, []byte("setting.put")) || bytes.Contains(r.body, []byte("very-secret")) {
		t.Fatalf("audit %s", r.body)
	}
}

func TestStatsEndpoint(t *testing.T) {
	t.Parallel()
	ta := startAPI(t)
	u := ta.user(51)
	ta.user(52)
	ta.paid(u.ID, pay.Stars, pay.XTR, 120)
	ta.paid(u.ID, pay.QvaPay, pay.USD, 250)
	if _, err := ta.svc.CreateKey(context.Background(), app.ActorCLI, app.KeyRequest{UserID: u.ID, Type: model.Outline, Trial: true}); err != nil {
		t.Fatal(err)
	}
	if err := ta.st.RecordUsage(ta.clock.Now(), []store.UsageSample{{ID: "k", Rx: 1000, Tx: 5000}}); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/stats"}), 401)
	r := ta.do(req{method: "GET", path: "/api/v1/stats?days=7", token: ta.tokens["read"]})
	wantStatus(t, r, 200)
	var s statsResponse
	r.json(t, &s)
	today := s.Days[len(s.Days)-1]
	if s.Users != 2 || s.ActiveUsers != 1 || s.ActiveKeys["outline"] != 1 || len(s.Days) != 7 ||
		today.Day != ta.clock.Now().UTC().Format(time.DateOnly) || today.RevenueStars != 120 || today.RevenueUSDCents != 250 ||
		today.NewUsers != 2 || today.BytesIn != 1000 || today.BytesOut != 5000 {
		t.Fatalf("stats %s", r.body)
	}
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/stats?days=7", token: ta.tokens["read"], header: map[string]string{"If-None-Match": r.header.Get("ETag")}}), 304)
	r = ta.do(req{method: "GET", path: "/api/v1/stats", token: ta.tokens["read"]})
	r.json(t, &s)
	if len(s.Days) != DefaultStatsDays {
		t.Fatalf("default days %d", len(s.Days))
	}
	for _, bad := range []string{"0", "367", "x"} {
		wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/stats?days=" + bad, token: ta.tokens["read"]}), 400)
	}
}

// memBroadcaster is an in-memory Broadcaster for the adapter's tests.
type memBroadcaster struct {
	off  bool // answer as a node without a bot
	mu   sync.Mutex
	sent map[string]*BroadcastStatus
	text map[string]string
	now  func() time.Time
}

func (m *memBroadcaster) Broadcast(ctx context.Context, actor string, seg BroadcastSegment, text string) (string, error) {
	if m.off {
		return "", fmt.Errorf("%w: no bot", ErrBroadcastsOff)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	id := fmt.Sprintf("b%d", len(m.sent)+1)
	m.sent[id] = &BroadcastStatus{ID: id, Actor: actor, State: "queued", Segment: seg, Text: text, Created: m.now()}
	m.text[id] = actor + "|" + text
	return id, nil
}

func (m *memBroadcaster) BroadcastStatus(ctx context.Context, id string) (*BroadcastStatus, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.sent[id]
	if st == nil {
		return nil, fmt.Errorf("broadcast %s: %w", id, model.ErrNotFound)
	}
	cp := *st
	return &cp, nil
}

func TestBroadcasts(t *testing.T) {
	t.Parallel()
	off := startAPI(t)
	wantStatus(t, off.do(req{method: "POST", path: "/api/v1/broadcasts", token: off.tokens["admin"], body: broadcastRequest{Text: "hola"}}), 503)
	wantStatus(t, off.do(req{method: "GET", path: "/api/v1/broadcasts/b1", token: off.tokens["admin"]}), 503)

	noBot := startAPI(t, func(o *Options) { o.Broadcaster = &memBroadcaster{off: true} })
	wantStatus(t, noBot.do(req{method: "POST", path: "/api/v1/broadcasts", token: noBot.tokens["admin"], body: broadcastRequest{Text: "hola"}}), 503)

	b := &memBroadcaster{sent: map[string]*BroadcastStatus{}, text: map[string]string{}, now: time.Now}
	ta := startAPI(t, func(o *Options) { o.Broadcaster = b })
	adm := ta.tokens["admin"]
	in := broadcastRequest{Text: "¡Nuevo plan!", Segment: BroadcastSegment{Language: "es", ActiveOnly: true}}
	wantStatus(t, ta.do(req{method: "POST", path: "/api/v1/broadcasts", token: ta.tokens["write"], body: in}), 403)
	r := ta.do(req{method: "POST", path: "/api/v1/broadcasts", token: adm, body: in, header: map[string]string{"Idempotency-Key": "b-1"}})
	wantStatus(t, r, 202)
	var st BroadcastStatus
	r.json(t, &st)
	if st.ID != "b1" || st.State != "queued" || r.header.Get("Location") != "/api/v1/broadcasts/b1" || b.text["b1"] != "api:"+strings.Split(ta.tokens["admin"], "_")[1]+"|¡Nuevo plan!" {
		t.Fatalf("queued %s %q", r.body, b.text["b1"])
	}
	// The retry queues nothing twice.
	r = ta.do(req{method: "POST", path: "/api/v1/broadcasts", token: adm, body: in, header: map[string]string{"Idempotency-Key": "b-1"}})
	wantStatus(t, r, 202)
	if len(b.sent) != 1 {
		t.Fatalf("%d broadcasts after a retry", len(b.sent))
	}
	for _, bad := range []broadcastRequest{{Text: " "}, {Text: strings.Repeat("x", MaxBroadcastText+1)},
		{Text: "x", Segment: BroadcastSegment{Language: "fr"}}, {Text: "x", Segment: BroadcastSegment{PlanID: "p"}}} {
		wantStatus(t, ta.do(req{method: "POST", path: "/api/v1/broadcasts", token: adm, body: bad}), 422)
	}
	r = ta.do(req{method: "GET", path: "/api/v1/broadcasts/b1", token: adm})
	wantStatus(t, r, 200)
	// Polled progress: unchanged, it answers 304.
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/broadcasts/b1", token: adm,
		header: map[string]string{"If-None-Match": r.header.Get("ETag")}}), 304)
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/broadcasts/b9", token: adm}), 404)
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/broadcasts/b1", token: ta.tokens["read"]}), 403)
}

func TestPlanGetAndUpdate(t *testing.T) {
	t.Parallel()
	ta := startAPI(t)
	adm := ta.tokens["admin"]
	r := ta.do(req{method: "POST", path: "/api/v1/plans", token: adm, body: planRequest{Name: "Básico", DurationDays: 30, MaxKeys: 1, PriceStars: 100}})
	wantStatus(t, r, 201)
	var p model.Plan
	r.json(t, &p)
	r = ta.do(req{method: "GET", path: "/api/v1/plans/" + p.ID, token: ta.tokens["read"]})
	wantStatus(t, r, 200)
	up := planRequest{Name: "Básico", DurationDays: 30, MaxKeys: 2, PriceStars: 150, PriceUSDCents: 299}
	wantStatus(t, ta.do(req{method: "PUT", path: "/api/v1/plans/" + p.ID, token: ta.tokens["write"], body: up}), 403)
	r = ta.do(req{method: "PUT", path: "/api/v1/plans/" + p.ID, token: adm, body: up})
	wantStatus(t, r, 200)
	r.json(t, &p)
	if p.PriceStars != 150 || p.MaxKeys != 2 || p.Version < 2 {
		t.Fatalf("updated %s", r.body)
	}
	wantStatus(t, ta.do(req{method: "PUT", path: "/api/v1/plans/" + strings.Repeat("3", 26), token: adm, body: up}), 404)
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/plans/x", token: adm}), 422)
}
