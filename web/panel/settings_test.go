package panel

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/app/notify"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// paidPayment records a settled QvaPay credits purchase for a new user.
func (tp *testPanel) paidPayment() (userID, paymentID string) {
	tp.t.Helper()
	ctx := context.Background()
	u, err := tp.svc.RegisterUser(ctx, app.ActorCLI, appUser(31337))
	if err != nil {
		tp.t.Fatal(err)
	}
	id := func() string {
		s, err := model.NewID(tp.clock.Now(), rand.Reader)
		if err != nil {
			tp.t.Fatal(err)
		}
		return s
	}
	pid := id()
	m := store.Meta{At: tp.clock.Now(), Actor: "test"}
	if err := tp.st.Do(ctx, m, store.CreatePayment{Payment: model.Payment{ID: pid, UserID: u.ID, Provider: "qvapay",
		Amount: 499, Currency: "USD", Product: model.Product{Kind: "credits", Qty: 30}}}); err != nil {
		tp.t.Fatal(err)
	}
	if err := tp.st.Do(ctx, m, store.SettlePayment{PaymentID: pid, ChargeID: "qv-1", Amount: 499, Currency: "USD",
		EntryID: id(), VestID: id()}); err != nil {
		tp.t.Fatal(err)
	}
	return u.ID, pid
}

func TestPaymentsFilterAndRefund(t *testing.T) {
	tp := startPanel(t)
	uid, pid := tp.paidPayment()
	tp.login(tp.client, "", http.StatusSeeOther)
	tok := tp.csrf(tp.client, "/payments")
	if r := tp.get(tp.client, "/payments?status=paid&provider=qvapay"); !strings.Contains(r.body, pid) || !strings.Contains(r.body, "$4.99") {
		t.Fatalf("paid list: %.800s", r.body)
	}
	if r := tp.get(tp.client, "/payments?status=refunded"); strings.Contains(r.body, pid) {
		t.Fatal("a paid payment listed as refunded")
	}
	if r := tp.get(tp.client, "/payments?status=bogus"); r.status != 422 {
		t.Fatalf("bad status filter: %d", r.status)
	}
	if r := tp.post(tp.client, "/payments/"+pid+"/refund", url.Values{"csrf": {tok}}); r.status != 422 {
		t.Fatalf("QvaPay refund without a reference: %d", r.status)
	}
	if r := tp.post(tp.client, "/payments/"+pid+"/refund", url.Values{"csrf": {tok}, "reference": {"qv-refund-9"}}); r.status != http.StatusSeeOther {
		t.Fatalf("refund: %d %.400s", r.status, r.body)
	}
	p, err := tp.svc.Payment(context.Background(), pid)
	if err != nil || p.Status != model.PayRefunded {
		t.Fatalf("after refund: %+v %v", p, err)
	}
	if b, _ := tp.svc.Balance(context.Background(), uid); b != 0 {
		t.Fatalf("balance %d after the refund reversed the credits", b)
	}
	if r := tp.get(tp.client, "/payments?user="+uid); !strings.Contains(r.body, "refunded") {
		t.Fatal("user's payments do not show the refund")
	}
}

func TestSettingsPolicyPlansAndWriteOnlySecrets(t *testing.T) {
	tp := startPanel(t)
	tp.login(tp.client, "", http.StatusSeeOther)
	tok := tp.csrf(tp.client, "/settings")
	r := tp.post(tp.client, "/settings/policy", url.Values{"csrf": {tok}, "trials_enabled": {"1"}, "trial_days": {"5"},
		"trial_data_mib": {"512"}, "proto_outline": {"1"}, "referral_credits": {"20"}, "max_conns_default": {"4"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("policy: %d %.300s", r.status, r.body)
	}
	pol := tp.svc.Policy()
	if !pol.TrialsEnabled || pol.TrialDays != 5 || pol.TrialDataBytes != 512<<20 || len(pol.TrialProtocols) != 1 ||
		pol.TrialProtocols[0] != model.Outline || pol.ReferralCredits != 20 || pol.MaxConnsDefault != 4 {
		t.Fatalf("policy %+v", pol)
	}
	if r := tp.post(tp.client, "/settings/policy", url.Values{"csrf": {tok}, "trial_days": {"500"}}); r.status != 422 {
		t.Fatalf("a 500-day trial: %d", r.status)
	}
	r = tp.post(tp.client, "/settings/plans", url.Values{"csrf": {tok}, "name": {"Basic"}, "duration_days": {"30"},
		"data_cap_gib": {"50"}, "max_keys": {"2"}, "proto_wireguard": {"1"}, "price_stars": {"250"}, "price_usd_cents": {"399"}, "active": {"1"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("plan: %d %.300s", r.status, r.body)
	}
	plans, _, _ := tp.svc.Plans(context.Background(), store.Page{})
	if len(plans) != 1 || plans[0].PriceStars != 250 || plans[0].PriceUSDCents != 399 || plans[0].DataCapBytes != 50<<30 || !plans[0].Active {
		t.Fatalf("plans %+v", plans)
	}
	const token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
	r = tp.post(tp.client, "/settings/secrets", url.Values{"csrf": {tok}, "bot_token": {token},
		"qvapay_app_id": {"app-1234"}, "qvapay_secret": {"qvapay-secret-5678"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("secrets: %d %.300s", r.status, r.body)
	}
	if got, _ := tp.svc.StoredBotToken(); got != token {
		t.Fatalf("stored token %q", got)
	}
	page := tp.get(tp.client, "/settings")
	if strings.Contains(page.body, token) || strings.Contains(page.body, "qvapay-secret-5678") ||
		!strings.Contains(page.body, `id="bot-token-state">set<`) {
		t.Fatal("a secret shown back, or its state not shown")
	}
}

func TestTickets(t *testing.T) {
	tp := startPanel(t)
	ctx := context.Background()
	u, err := tp.svc.RegisterUser(ctx, app.ActorCLI, appUser(808))
	if err != nil {
		t.Fatal(err)
	}
	tk, err := tp.svc.OpenTicket(ctx, app.BotActor(808), u.ID, "No connection", "My key stopped working <b>today</b>")
	if err != nil {
		t.Fatal(err)
	}
	tp.login(tp.client, "", http.StatusSeeOther)
	tok := tp.csrf(tp.client, "/tickets")
	if r := tp.get(tp.client, "/tickets"); !strings.Contains(r.body, tk.ID) || !strings.Contains(r.body, "No connection") {
		t.Fatalf("open tickets: %.600s", r.body)
	}
	if r := tp.get(tp.client, "/tickets/"+tk.ID); !strings.Contains(r.body, "&lt;b&gt;today&lt;/b&gt;") {
		t.Fatalf("ticket text not escaped: %.800s", r.body)
	}
	if r := tp.post(tp.client, "/tickets/"+tk.ID+"/reply", url.Values{"csrf": {tok}, "text": {"Rotate the key, please."}}); r.status != http.StatusSeeOther {
		t.Fatalf("reply: %d %.300s", r.status, r.body)
	}
	if r := tp.post(tp.client, "/tickets/"+tk.ID+"/status", url.Values{"csrf": {tok}, "status": {"closed"}}); r.status != http.StatusSeeOther {
		t.Fatalf("close: %d", r.status)
	}
	v, err := tp.svc.Ticket(ctx, tk.ID)
	if err != nil || v.Status != model.TicketClosed || len(v.Messages) != 2 || v.Messages[1].From != "admin:admin" {
		t.Fatalf("ticket %+v %v", v, err)
	}
	if r := tp.get(tp.client, "/tickets?status=closed"); !strings.Contains(r.body, tk.ID) {
		t.Fatal("closed ticket not listed")
	}
}

func TestBroadcast(t *testing.T) {
	off := startPanel(t)
	off.login(off.client, "", http.StatusSeeOther)
	if r := off.get(off.client, "/broadcast"); !strings.Contains(r.body, `id="broadcast-off"`) {
		t.Fatal("no notice that broadcasts are off")
	}
	if r := off.post(off.client, "/broadcast", url.Values{"csrf": {off.csrf(off.client, "/broadcast")}, "text": {"hi"}}); r.status != 422 {
		t.Fatalf("broadcast without a bot: %d", r.status)
	}

	// The notifier only queues here (its Run, which sends, is not started):
	// delivery is app/notify's to test.
	tp := startPanel(t, func(o *Options) {
		n, err := notify.New(notify.Options{Store: o.Service.Store(), Service: o.Service, BotToken: "1:test",
			BotAPIURL: "http://127.0.0.1:9", Now: o.Now})
		if err != nil {
			t.Fatal(err)
		}
		o.Notifier = n
	})
	tp.login(tp.client, "", http.StatusSeeOther)
	tok := tp.csrf(tp.client, "/broadcast")
	if r := tp.post(tp.client, "/broadcast", url.Values{"csrf": {tok}, "text": {""}}); r.status != 422 {
		t.Fatalf("empty broadcast: %d", r.status)
	}
	r := tp.post(tp.client, "/broadcast", url.Values{"csrf": {tok}, "text": {"Maintenance tonight"}, "language": {"es"}, "active_key": {"1"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("queue: %d %.300s", r.status, r.body)
	}
	page := tp.get(tp.client, "/broadcast")
	m := regexp.MustCompile(`action="/broadcast/([^/"]+)/cancel"`).FindStringSubmatch(page.body)
	if m == nil || !strings.Contains(page.body, "Maintenance tonight") || !strings.Contains(page.body, "queued") {
		t.Fatalf("broadcast list: %.800s", page.body)
	}
	if r := tp.post(tp.client, "/broadcast/"+m[1]+"/cancel", url.Values{"csrf": {tok}}); r.status != http.StatusSeeOther {
		t.Fatalf("cancel: %d", r.status)
	}
	if r := tp.post(tp.client, "/broadcast/"+m[1]+"/cancel", url.Values{"csrf": {tok}}); r.status != 422 {
		t.Fatalf("cancel twice: %d", r.status)
	}
	if page := tp.get(tp.client, "/broadcast"); !strings.Contains(page.body, "cancelled") {
		t.Fatal("not shown cancelled")
	}
}

func TestProxies(t *testing.T) {
	tp := startPanel(t)
	u, err := tp.svc.RegisterUser(context.Background(), app.ActorCLI, appUser(909))
	if err != nil {
		t.Fatal(err)
	}
	tp.login(tp.client, "", http.StatusSeeOther)
	tok := tp.csrf(tp.client, "/proxies")
	if r := tp.get(tp.client, "/proxies"); !strings.Contains(r.body, `id="free-off"`) {
		t.Fatal("no notice that the free list is off")
	}
	r := tp.post(tp.client, "/proxies", url.Values{"csrf": {tok}, "user": {u.ID}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("create: %d %.300s", r.status, r.body)
	}
	path := r.header.Get("Location")
	page := tp.get(tp.client, path)
	if !strings.Contains(page.body, "tg://proxy?") {
		t.Fatalf("no tg://proxy link: %.600s", page.body)
	}
	if qr := tp.get(tp.client, path+"/qr.png"); qr.status != 200 || qr.header.Get("Content-Type") != "image/png" {
		t.Fatalf("QR: %d", qr.status)
	}
	if r := tp.get(tp.client, "/proxies?user="+u.ID); !strings.Contains(r.body, strings.TrimPrefix(path, "/proxies/")) {
		t.Fatal("secret not listed for its user")
	}
	if r := tp.post(tp.client, path+"/revoke", url.Values{"csrf": {tok}}); r.status != http.StatusSeeOther {
		t.Fatalf("revoke: %d", r.status)
	}
	if page := tp.get(tp.client, path); strings.Contains(page.body, "tg://proxy?") || !strings.Contains(page.body, "revoked") {
		t.Fatal("a revoked secret still shows its link")
	}
}
