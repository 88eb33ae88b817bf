package api

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/store/model"
)

// names lists the items of every page of path (following next with
// limit=1, so the filter is checked across pages too), by name.
func (ta *testAPI) names(path, token string, name func(*resp) ([]string, string)) []string {
	ta.t.Helper()
	var out []string
	after := ""
	for pages := 0; ; pages++ {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		r := ta.do(req{method: "GET", path: path + sep + "limit=1&after=" + after, token: token})
		wantStatus(ta.t, r, 200)
		items, next := name(r)
		out = append(out, items...)
		if next == "" {
			break
		}
		if pages > 20 {
			ta.t.Fatalf("%s: pagination does not end", path)
		}
		after = next
	}
	slices.Sort(out)
	return out
}

func wantNames(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s: got %q, want %q", what, got, want)
	}
}

func TestListPlansFilters(t *testing.T) {
	t.Parallel()
	ta := startAPI(t)
	ctx, r := context.Background(), ta.tokens["read"]
	for _, p := range []app.PlanSpec{
		{Name: "Mensual", DurationDays: 30, MaxKeys: 1, Protocols: []model.KeyType{model.WireGuard, model.Outline}},
		{Name: "mensual plus", DurationDays: 30, MaxKeys: 2, Protocols: []model.KeyType{model.WireGuard}, Inactive: true},
		{Name: "Anual", DurationDays: 365, MaxKeys: 3, Protocols: []model.KeyType{model.MTProto}},
	} {
		if _, err := ta.svc.PutPlan(ctx, app.ActorCLI, p); err != nil {
			t.Fatal(err)
		}
	}
	plans := func(res *resp) ([]string, string) {
		var l list[model.Plan]
		res.json(t, &l)
		var out []string
		for _, p := range l.Items {
			out = append(out, p.Name)
		}
		return out, l.Next
	}
	p := "/api/v1/plans"
	wantNames(t, "all", ta.names(p, r, plans), "Mensual", "mensual plus", "Anual")
	wantNames(t, "active", ta.names(p+"?active=true", r, plans), "Mensual", "Anual")
	wantNames(t, "retired", ta.names(p+"?active=false", r, plans), "mensual plus")
	wantNames(t, "name prefix, any case", ta.names(p+"?name=MENS", r, plans), "Mensual", "mensual plus")
	wantNames(t, "name and active", ta.names(p+"?name=mens&active=true", r, plans), "Mensual")
	wantNames(t, "protocol", ta.names(p+"?protocol=wireguard", r, plans), "Mensual", "mensual plus")
	wantNames(t, "nothing matches", ta.names(p+"?protocol=mtproto&active=false", r, plans))
	wantStatus(t, ta.do(req{method: "GET", path: p + "?active=sometimes", token: r}), 400)
	wantStatus(t, ta.do(req{method: "GET", path: p + "?protocol=openvpn", token: r}), 400)
}

func TestListAPIKeysFilters(t *testing.T) {
	t.Parallel()
	ta := startAPI(t)
	ctx, adm := context.Background(), ta.tokens["admin"]
	_, err := ta.svc.CreateAPIKey(ctx, app.ActorCLI, "soon", []model.Scope{model.ScopeWrite}, ta.clock.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	gone, err := ta.svc.CreateAPIKey(ctx, app.ActorCLI, "gone", []model.Scope{model.ScopeRead}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ta.svc.RevokeAPIKey(ctx, app.ActorCLI, gone.Key.ID); err != nil {
		t.Fatal(err)
	}
	keys := func(res *resp) ([]string, string) {
		if bytes.Contains(res.body, []byte(`"hash":"`)) {
			t.Fatalf("a listed API key carries its hash: %s", res.body)
		}
		var l list[model.APIKey]
		res.json(t, &l)
		var out []string
		for _, k := range l.Items {
			out = append(out, k.Name)
		}
		return out, l.Next
	}
	p := "/api/v1/apikeys"
	wantNames(t, "active before the expiry", ta.names(p+"?status=active", adm, keys), "test-read", "test-write", "test-admin", "soon")
	ta.clock.Add(time.Hour) // expired from ExpiresAt on, as authentication judges it
	wantNames(t, "all", ta.names(p, adm, keys), "test-read", "test-write", "test-admin", "soon", "gone")
	wantNames(t, "active", ta.names(p+"?status=active", adm, keys), "test-read", "test-write", "test-admin")
	wantNames(t, "expired", ta.names(p+"?status=expired", adm, keys), "soon")
	wantNames(t, "revoked", ta.names(p+"?status=revoked", adm, keys), "gone")
	wantNames(t, "scope", ta.names(p+"?scope=read", adm, keys), "test-read", "gone")
	wantNames(t, "scope and status", ta.names(p+"?scope=write&status=active", adm, keys), "test-write")
	wantStatus(t, ta.do(req{method: "GET", path: p + "?status=paused", token: adm}), 400)
	wantStatus(t, ta.do(req{method: "GET", path: p + "?scope=root", token: adm}), 400)
	wantStatus(t, ta.do(req{method: "GET", path: p + "?status=active", token: ta.tokens["write"]}), 403)
}

func TestListSubscriptionsFilters(t *testing.T) {
	t.Parallel()
	ta := startAPI(t)
	ctx, r := context.Background(), ta.tokens["read"]
	u := ta.user(77)
	plan := func(name string) string {
		p, err := ta.svc.PutPlan(ctx, app.ActorCLI, app.PlanSpec{Name: name, DurationDays: 30, MaxKeys: 1, Protocols: []model.KeyType{model.Outline}})
		if err != nil {
			t.Fatal(err)
		}
		return p.ID
	}
	grant := func(planID string, days int) string {
		s, err := ta.svc.GrantPlan(ctx, app.ActorCLI, u.ID, planID, 0, days)
		if err != nil {
			t.Fatal(err)
		}
		return s.ID
	}
	lapsed := grant(plan("Day"), 1)
	ta.clock.Add(48 * time.Hour) // still "active" as a record, but over
	current := grant(plan("Month"), 30)
	cancelled := grant(plan("Other"), 30)
	if _, err := ta.svc.RevokePlan(ctx, app.ActorCLI, u.ID, cancelled, "test"); err != nil {
		t.Fatal(err)
	}
	subs := func(res *resp) ([]string, string) {
		var l list[model.Subscription]
		res.json(t, &l)
		var out []string
		for _, s := range l.Items {
			out = append(out, s.ID)
		}
		return out, l.Next
	}
	p := "/api/v1/users/" + u.ID + "/subscriptions"
	wantNames(t, "all", ta.names(p, r, subs), lapsed, current, cancelled)
	wantNames(t, "status active", ta.names(p+"?status=active", r, subs), lapsed, current)
	wantNames(t, "status cancelled", ta.names(p+"?status=cancelled", r, subs), cancelled)
	wantNames(t, "current", ta.names(p+"?current=true", r, subs), current)
	wantNames(t, "not current", ta.names(p+"?current=false", r, subs), lapsed, cancelled)
	wantNames(t, "active but over", ta.names(p+"?status=active&current=false", r, subs), lapsed)
	wantStatus(t, ta.do(req{method: "GET", path: p + "?status=expired", token: r}), 400)
	wantStatus(t, ta.do(req{method: "GET", path: p + "?current=yes", token: r}), 400)
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/users/" + strings.Repeat("0", len(u.ID)) + "/subscriptions?status=active", token: r}), 404)
}
