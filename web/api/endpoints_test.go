package api

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/app/apptest"
	"github.com/usipipo/usipipo/store/model"
)

func TestUsers(t *testing.T) {
	t.Parallel()
	ta := startAPI(t)
	w, adm := ta.tokens["write"], ta.tokens["admin"]
	r := ta.do(req{method: "POST", path: "/api/v1/users", token: w,
		body: createUserRequest{TelegramID: 42, Username: "ana", FirstName: "Ana", Language: "en"}})
	wantStatus(t, r, 201)
	var u app.UserView
	r.json(t, &u)
	if u.Personal.FirstName != "Ana" || u.Language != "en" || r.header.Get("Location") != "/api/v1/users/"+u.ID {
		t.Fatalf("user %+v location %q", u, r.header.Get("Location"))
	}
	r = ta.do(req{method: "POST", path: "/api/v1/users", token: w, body: createUserRequest{TelegramID: 42}})
	wantStatus(t, r, 409)
	if r.problemType() != "exists" {
		t.Fatalf("type %q", r.problemType())
	}
	wantStatus(t, ta.do(req{method: "POST", path: "/api/v1/users", token: w, body: createUserRequest{TelegramID: -1}}), 422)

	// Get, with ETag.
	r = ta.do(req{method: "GET", path: "/api/v1/users/" + u.ID, token: w})
	wantStatus(t, r, 200)
	tag := r.header.Get("ETag")
	if tag == "" {
		t.Fatal("no ETag")
	}
	r = ta.do(req{method: "GET", path: "/api/v1/users/" + u.ID, token: w, header: map[string]string{"If-None-Match": tag}})
	wantStatus(t, r, 304)
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/users/nope", token: w}), 422)
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/users/" + strings.Repeat("0", len(u.ID)), token: w}), 404)

	// Ban changes the record, so the ETag no longer matches.
	r = ta.do(req{method: "POST", path: "/api/v1/users/" + u.ID + "/ban", token: w, body: reasonRequest{Reason: "abuse"}})
	wantStatus(t, r, 200)
	r = ta.do(req{method: "GET", path: "/api/v1/users/" + u.ID, token: w, header: map[string]string{"If-None-Match": tag}})
	wantStatus(t, r, 200)
	var banned app.UserView
	r.json(t, &banned)
	if !banned.Banned || banned.BanReason != "abuse" {
		t.Fatalf("not banned: %+v", banned)
	}

	// Pagination and filters.
	for i := 0; i < 4; i++ {
		ta.user(int64(100 + i))
	}
	seen := map[string]bool{}
	after := ""
	for pages := 0; ; pages++ {
		r = ta.do(req{method: "GET", path: "/api/v1/users?limit=2&after=" + after, token: w})
		wantStatus(t, r, 200)
		var l list[app.UserView]
		r.json(t, &l)
		for _, x := range l.Items {
			if seen[x.ID] {
				t.Fatalf("user %s listed twice", x.ID)
			}
			seen[x.ID] = true
		}
		if l.Next == "" {
			break
		}
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		after = l.Next
	}
	if len(seen) != 5 {
		t.Fatalf("listed %d users, want 5", len(seen))
	}
	r = ta.do(req{method: "GET", path: "/api/v1/users?banned=true", token: w})
	var l list[app.UserView]
	r.json(t, &l)
	if len(l.Items) != 1 || l.Items[0].ID != u.ID {
		t.Fatalf("banned filter: %s", r.body)
	}
	r = ta.do(req{method: "GET", path: "/api/v1/users?q=42", token: w})
	r.json(t, &l)
	if len(l.Items) != 1 || l.Items[0].ID != u.ID {
		t.Fatalf("q filter: %s", r.body)
	}
	r = ta.do(req{method: "GET", path: "/api/v1/users?q=999999", token: w})
	r.json(t, &l)
	if len(l.Items) != 0 {
		t.Fatalf("q filter: %s", r.body)
	}
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/users?limit=0", token: w}), 400)
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/users?banned=maybe", token: w}), 400)
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/users?after=!!", token: w}), 422)

	r = ta.do(req{method: "POST", path: "/api/v1/users/" + u.ID + "/unban", token: w})
	wantStatus(t, r, 200)

	// Export and erase (admin).
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/users/" + u.ID + "/export", token: w}), 403)
	r = ta.do(req{method: "GET", path: "/api/v1/users/" + u.ID + "/export", token: adm})
	wantStatus(t, r, 200)
	if !bytes.Contains(r.body, []byte(`"Ana"`)) {
		t.Fatalf("export lacks personal data: %s", r.body)
	}
	wantStatus(t, ta.do(req{method: "DELETE", path: "/api/v1/users/" + u.ID, token: adm}), 204)
	r = ta.do(req{method: "GET", path: "/api/v1/users/" + u.ID, token: w})
	wantStatus(t, r, 200)
	var erased app.UserView
	r.json(t, &erased)
	if !erased.Erased || erased.Personal.FirstName != "" {
		t.Fatalf("not erased: %s", r.body)
	}

	// Malformed bodies.
	wantStatus(t, ta.do(req{method: "POST", path: "/api/v1/users", token: w, body: `{"telegram_id": 1, "x": 2}`}), 400)
	wantStatus(t, ta.do(req{method: "POST", path: "/api/v1/users", token: w, body: `{"telegram_id": "1"}`}), 400)
	wantStatus(t, ta.do(req{method: "POST", path: "/api/v1/users", token: w, body: `{} {}`}), 400)
	wantStatus(t, ta.do(req{method: "POST", path: "/api/v1/users", token: w, body: `{}`, header: map[string]string{"Content-Type": "text/plain"}}), 415)
}

func TestCreditsReferralsPlans(t *testing.T) {
	t.Parallel()
	ta := startAPI(t)
	w, adm := ta.tokens["write"], ta.tokens["admin"]
	inviter := ta.user(1)
	ta.svc.RegisterUser(context.Background(), app.ActorCLI, app.NewUser{TelegramID: 2, ReferralCode: inviter.ReferralCode})
	base := "/api/v1/users/" + inviter.ID

	r := ta.do(req{method: "GET", path: base + "/referrals", token: w})
	wantStatus(t, r, 200)
	var rs app.ReferralSummary
	r.json(t, &rs)
	if rs.Invited != 1 || rs.Code != inviter.ReferralCode {
		t.Fatalf("referrals %+v", rs)
	}

	wantStatus(t, ta.do(req{method: "POST", path: base + "/credits", token: w, body: creditsRequest{Amount: 10, Reason: "gift"}}), 400)
	idem := map[string]string{"Idempotency-Key": "c1"}
	for i := 0; i < 2; i++ {
		r = ta.do(req{method: "POST", path: base + "/credits", token: w, body: creditsRequest{Amount: 10, Reason: "gift"}, header: idem})
		wantStatus(t, r, 201)
	}
	var bal balanceResponse
	r.json(t, &bal)
	if bal.Balance != 10 {
		t.Fatalf("balance %d after a retried add", bal.Balance)
	}
	r = ta.do(req{method: "POST", path: base + "/credits", token: w, body: creditsRequest{Amount: -100, Reason: "spend"}, header: map[string]string{"Idempotency-Key": "c2"}})
	wantStatus(t, r, 409)
	if r.problemType() != "insufficient-credits" {
		t.Fatalf("type %q", r.problemType())
	}
	r = ta.do(req{method: "GET", path: base + "/balance", token: ta.tokens["read"]})
	wantStatus(t, r, 200)
	r.json(t, &bal)
	if bal.Balance != 10 {
		t.Fatalf("balance %d", bal.Balance)
	}
	r = ta.do(req{method: "GET", path: base + "/credits", token: w})
	wantStatus(t, r, 200)
	var ledger list[model.CreditEntry]
	r.json(t, &ledger)
	if len(ledger.Items) != 1 {
		t.Fatalf("ledger %s", r.body)
	}

	// Plans and subscriptions.
	r = ta.do(req{method: "POST", path: "/api/v1/plans", token: adm,
		body: planRequest{Name: "Monthly", DurationDays: 30, MaxKeys: 2, Protocols: []string{"wireguard", "outline", "mtproto"}, PriceStars: 100}})
	wantStatus(t, r, 201)
	var plan model.Plan
	r.json(t, &plan)
	wantStatus(t, ta.do(req{method: "POST", path: "/api/v1/plans", token: adm, body: planRequest{Name: "Bad", DurationDays: 30, Protocols: []string{"ftp"}}}), 422)
	r = ta.do(req{method: "GET", path: "/api/v1/plans", token: w})
	var plans list[model.Plan]
	r.json(t, &plans)
	if len(plans.Items) != 1 {
		t.Fatalf("plans %s", r.body)
	}
	r = ta.do(req{method: "POST", path: base + "/subscriptions", token: w, body: grantRequest{PlanID: plan.ID, Months: 1}})
	wantStatus(t, r, 201)
	wantStatus(t, ta.do(req{method: "POST", path: base + "/subscriptions", token: w, body: grantRequest{PlanID: "nope", Months: 1}}), 404)
	r = ta.do(req{method: "GET", path: base + "/subscriptions", token: w})
	var subs list[model.Subscription]
	r.json(t, &subs)
	if len(subs.Items) != 1 || subs.Items[0].PlanID != plan.ID {
		t.Fatalf("subs %s", r.body)
	}
	// Within the plan: two keys, then the quota.
	for i, typ := range []string{"wireguard", "outline", "wireguard"} {
		r = ta.do(req{method: "POST", path: "/api/v1/vpn/create", token: w, body: vpnCreateRequest{UserID: inviter.ID, VPNType: typ}})
		if want := []int{201, 201, 409}[i]; r.status != want {
			t.Fatalf("key %d: %d %s", i, r.status, r.body)
		}
	}
	if r.problemType() != "quota" {
		t.Fatalf("type %q", r.problemType())
	}
}

func TestKeys(t *testing.T) {
	t.Parallel()
	ta := startAPI(t)
	w := ta.tokens["write"]
	u := ta.user(7)
	r := ta.do(req{method: "POST", path: "/api/v1/vpn/create", token: w, body: `{"user_id": "` + u.ID + `", "vpn_type": "wireguard", "is_trial": true}`})
	wantStatus(t, r, 201)
	var kc struct {
		Key    model.Key        `json:"key"`
		Config app.ClientConfig `json:"config"`
	}
	r.json(t, &kc)
	if !strings.Contains(kc.Config.Text, "[Interface]") || !kc.Key.Trial {
		t.Fatalf("wireguard key %s", r.body)
	}
	r = ta.do(req{method: "POST", path: "/api/v1/vpn/create", token: w, body: vpnCreateRequest{UserID: u.ID, VPNType: "wireguard", IsTrial: true}})
	wantStatus(t, r, 409)
	if r.problemType() != "trial-used" {
		t.Fatalf("type %q", r.problemType())
	}
	wantStatus(t, ta.do(req{method: "POST", path: "/api/v1/vpn/create", token: w, body: vpnCreateRequest{UserID: u.ID, VPNType: "ipsec"}}), 422)
	wantStatus(t, ta.do(req{method: "POST", path: "/api/v1/vpn/create", token: w, body: vpnCreateRequest{UserID: "x", VPNType: "outline"}}), 422)
	r = ta.do(req{method: "POST", path: "/api/v1/keys", token: w, body: createKeyRequest{UserID: u.ID, Type: "outline", Name: "phone", Trial: true}})
	wantStatus(t, r, 201)
	var oc struct {
		Key    model.Key        `json:"key"`
		Config app.ClientConfig `json:"config"`
	}
	r.json(t, &oc)
	if !strings.HasPrefix(oc.Config.Text, "ss://") {
		t.Fatalf("outline key %s", r.body)
	}

	id := kc.Key.ID
	r = ta.do(req{method: "GET", path: "/api/v1/keys/" + id, token: w})
	wantStatus(t, r, 200)
	if bytes.Contains(r.body, []byte(`"secret":"`)) {
		t.Fatalf("secret in key view: %s", r.body)
	}
	r = ta.do(req{method: "GET", path: "/api/v1/keys/" + id + "/config", token: w})
	wantStatus(t, r, 200)
	tag := r.header.Get("ETag")
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/keys/" + id + "/config", token: w, header: map[string]string{"If-None-Match": `W/` + tag}}), 304)
	r = ta.do(req{method: "GET", path: "/api/v1/keys/" + id + "/qr", token: w})
	wantStatus(t, r, 200)
	if r.header.Get("Content-Type") != "image/png" || !bytes.HasPrefix(r.body, []byte("\x89PNG")) {
		t.Fatalf("qr: %q", r.header.Get("Content-Type"))
	}
	r = ta.do(req{method: "POST", path: "/api/v1/keys/" + id + "/rotate", token: w})
	wantStatus(t, r, 200)
	var rot struct {
		Config app.ClientConfig `json:"config"`
	}
	r.json(t, &rot)
	if rot.Config.Text == kc.Config.Text {
		t.Fatal("rotation kept the config")
	}
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/keys/" + id + "/config", token: w, header: map[string]string{"If-None-Match": tag}}), 200)

	r = ta.do(req{method: "GET", path: "/api/v1/keys?user_id=" + u.ID + "&status=active", token: w})
	var kl list[model.Key]
	r.json(t, &kl)
	if len(kl.Items) != 2 {
		t.Fatalf("keys %s", r.body)
	}
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/keys?status=bogus", token: w}), 400)
	r = ta.do(req{method: "POST", path: "/api/v1/keys/" + id + "/revoke", token: w, body: reasonRequest{Reason: "lost"}})
	wantStatus(t, r, 200)
	var rk model.Key
	r.json(t, &rk)
	if rk.Status != model.KeyRevoked {
		t.Fatalf("status %s", rk.Status)
	}
	r = ta.do(req{method: "GET", path: "/api/v1/keys/" + id + "/config", token: w})
	wantStatus(t, r, 409)
	if r.problemType() != "state" {
		t.Fatalf("type %q", r.problemType())
	}
	r = ta.do(req{method: "GET", path: "/api/v1/keys?limit=1", token: w})
	r.json(t, &kl)
	if len(kl.Items) != 1 || kl.Next == "" {
		t.Fatalf("page %s", r.body)
	}
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/keys/" + strings.Repeat("0", len(id)), token: w}), 404)
}

func TestProxies(t *testing.T) {
	t.Parallel()
	ta := startAPI(t)
	w := ta.tokens["write"]
	u := ta.user(8)
	r := ta.do(req{method: "POST", path: "/api/v1/proxies", token: w, body: createProxyRequest{UserID: u.ID, Trial: true}})
	wantStatus(t, r, 201)
	var pc struct {
		Key    model.Proxy      `json:"key"`
		Config app.ClientConfig `json:"config"`
	}
	r.json(t, &pc)
	if !strings.HasPrefix(pc.Config.Text, "tg://proxy") || !strings.HasPrefix(pc.Config.Link, "https://t.me/proxy") {
		t.Fatalf("links %+v", pc.Config)
	}
	id := pc.Key.ID
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/proxies/" + id, token: w}), 200)
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/proxies/" + id + "/link", token: w}), 200)
	r = ta.do(req{method: "GET", path: "/api/v1/proxies?user_id=" + u.ID, token: w})
	var pl list[model.Proxy]
	r.json(t, &pl)
	if len(pl.Items) != 1 {
		t.Fatalf("proxies %s", r.body)
	}
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/proxies", token: w}), 200)
	wantStatus(t, ta.do(req{method: "POST", path: "/api/v1/proxies/" + id + "/revoke", token: w}), 200)
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/proxies/" + id + "/link", token: w}), 409)
	wantStatus(t, ta.do(req{method: "POST", path: "/api/v1/proxies", token: w, body: createProxyRequest{UserID: u.ID, Grant: true}}), 403)
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/proxies/bad", token: w}), 422)
}

func TestIdempotency(t *testing.T) {
	t.Parallel()
	ta := startAPI(t)
	w := ta.tokens["write"]
	h := map[string]string{"Idempotency-Key": "k-1"}
	r1 := ta.do(req{method: "POST", path: "/api/v1/users", token: w, body: createUserRequest{TelegramID: 5}, header: h})
	wantStatus(t, r1, 201)
	r2 := ta.do(req{method: "POST", path: "/api/v1/users", token: w, body: createUserRequest{TelegramID: 5}, header: h})
	wantStatus(t, r2, 201)
	if !bytes.Equal(r1.body, r2.body) || r2.header.Get("Idempotent-Replayed") != "true" || r2.header.Get("Location") != r1.header.Get("Location") {
		t.Fatalf("replay differs:\n%s\n%s", r1.body, r2.body)
	}
	r := ta.do(req{method: "POST", path: "/api/v1/users", token: w, body: createUserRequest{TelegramID: 6}, header: h})
	wantStatus(t, r, 422)
	if r.problemType() != "idempotency-key-reused" {
		t.Fatalf("type %q", r.problemType())
	}
	// Keys are per credential: another key runs the call (and finds the user).
	wantStatus(t, ta.do(req{method: "POST", path: "/api/v1/users", token: ta.tokens["admin"], body: createUserRequest{TelegramID: 5}, header: h}), 409)

	// The seed's create call, retried, creates one key.
	var u app.UserView
	r1.json(t, &u)
	body := vpnCreateRequest{UserID: u.ID, VPNType: "outline", IsTrial: true}
	hk := map[string]string{"Idempotency-Key": "vpn-1"}
	a := ta.do(req{method: "POST", path: "/api/v1/vpn/create", token: w, body: body, header: hk})
	b := ta.do(req{method: "POST", path: "/api/v1/vpn/create", token: w, body: body, header: hk})
	wantStatus(t, a, 201)
	wantStatus(t, b, 201)
	ks, _, _ := ta.svc.Keys(context.Background(), storeKeyFilter(u.ID), pageAll())
	if len(ks) != 1 || !bytes.Equal(a.body, b.body) {
		t.Fatalf("%d keys after a retried create", len(ks))
	}
	// A failed call is not stored: its retry runs again.
	bad := map[string]string{"Idempotency-Key": "bad-1"}
	wantStatus(t, ta.do(req{method: "POST", path: "/api/v1/vpn/create", token: w, body: vpnCreateRequest{UserID: u.ID, VPNType: "outline", IsTrial: true}, header: bad}), 409)
	wantStatus(t, ta.do(req{method: "POST", path: "/api/v1/vpn/create", token: w, body: vpnCreateRequest{UserID: u.ID, VPNType: "outline", IsTrial: true}, header: bad}), 409)
	wantStatus(t, ta.do(req{method: "POST", path: "/api/v1/users", token: w, body: createUserRequest{}, header: map[string]string{"Idempotency-Key": strings.Repeat("x", 201)}}), 400)
}

func TestIdempotencyBounded(t *testing.T) {
	t.Parallel()
	c := &apptest.Clock{}
	s := newIdemStore(3, 10, c.Now, nil)
	for i := 0; i < 5; i++ {
		k := fmt.Sprint(i)
		if e, err := s.begin(k, [32]byte{}); e != nil || err != nil {
			t.Fatal("fresh key found")
		}
		s.finish(k, &idemEntry{status: 201})
	}
	if len(s.m) > 3 {
		t.Fatalf("%d entries kept, max 3", len(s.m))
	}
	if e, _ := s.begin("4", [32]byte{}); e == nil || !e.done {
		t.Fatal("newest entry forgotten")
	}
	c.Add(11)
	if e, _ := s.begin("4", [32]byte{}); e != nil {
		t.Fatal("entry outlived its window")
	}
}

func TestAuditAndStatus(t *testing.T) {
	t.Parallel()
	ta := startAPI(t, func(o *Options) {
		o.Status = func(context.Context) (any, error) { return map[string]any{"node": "n1", "planes": 3}, nil }
	})
	adm := ta.tokens["admin"]
	u := ta.user(9)
	ta.do(req{method: "POST", path: "/api/v1/users/" + u.ID + "/ban", token: adm})
	r := ta.do(req{method: "GET", path: "/api/v1/audit?limit=2", token: adm})
	wantStatus(t, r, 200)
	var al list[model.AuditEntry]
	r.json(t, &al)
	if len(al.Items) != 2 || al.Next == "" || al.Items[0].Seq < al.Items[1].Seq {
		t.Fatalf("audit %s", r.body)
	}
	r = ta.do(req{method: "GET", path: "/api/v1/audit?user_id=" + u.ID, token: adm})
	r.json(t, &al)
	if len(al.Items) != 2 || al.Items[0].UserID != u.ID {
		t.Fatalf("audit of user %s", r.body)
	}
	r = ta.do(req{method: "GET", path: "/api/v1/audit?user_id=" + u.ID + "&action=" + al.Items[0].Action, token: adm})
	r.json(t, &al)
	if len(al.Items) != 1 {
		t.Fatalf("audit of action %s", r.body)
	}
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/audit?action=x", token: adm}), 422)
	r = ta.do(req{method: "GET", path: "/api/v1/node/status", token: ta.tokens["read"]})
	wantStatus(t, r, 200)
	if !bytes.Contains(r.body, []byte(`"planes":3`)) {
		t.Fatalf("status %s", r.body)
	}
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/node/status", token: ta.tokens["read"],
		header: map[string]string{"If-None-Match": r.header.Get("ETag")}}), 304)
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/health"}), 200)
}
