package app

import (
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
	"github.com/usipipo/usipipo/vpn/outline"
)

func mgmtCall(t *testing.T, app *fiber.App, method, path, body string) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, "/Sec"+path, r)
	resp, err := app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s %s: %q is not JSON", method, path, b)
		}
	}
	return resp.StatusCode, m
}

func TestOutlineManagerOnTheServiceLayer(t *testing.T) {
	n := newTestNode(t)
	app := fiber.New()
	outline.MountManagement(app.Group("/Sec"), n.svc.OutlineManager("1.2.3"))

	code, srv := mgmtCall(t, app, "GET", "/server", "")
	if code != 200 || srv["version"] != "1.2.3" || srv["portForNewAccessKeys"] != float64(8388) ||
		srv["hostnameForAccessKeys"] != "vpn.example.net" || len(srv["serverId"].(string)) != 32 {
		t.Fatalf("server: %d %v", code, srv)
	}
	if code, again := mgmtCall(t, app, "GET", "/server", ""); code != 200 || again["serverId"] != srv["serverId"] ||
		again["createdTimestampMs"] != srv["createdTimestampMs"] {
		t.Fatalf("server id not kept: %v vs %v", again, srv)
	}
	for _, c := range []struct {
		method, path, body string
		want               int
	}{
		{"PUT", "/name", `{"name":"Mi nodo"}`, 204},
		{"PUT", "/server/port-for-new-access-keys", `{"port":8388}`, 204},
		{"PUT", "/server/port-for-new-access-keys", `{"port":9999}`, 400},
		{"PUT", "/server/hostname-for-access-keys", `{"hostname":"ss.example.net"}`, 204},
		{"PUT", "/server/access-key-data-limit", `{"limit":{"bytes":5000}}`, 204},
	} {
		if code, body := mgmtCall(t, app, c.method, c.path, c.body); code != c.want {
			t.Fatalf("%s %s: %d %v, want %d", c.method, c.path, code, body, c.want)
		}
	}

	// A customer's key is on the list too; the app's keys belong to one user.
	u, _ := n.svc.RegisterUser(ctx(), ActorCLI, NewUser{TelegramID: 11})
	cust, err := n.svc.CreateKey(ctx(), ActorCLI, KeyRequest{UserID: u.ID, Type: model.Outline, Admin: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.svc.CreateKey(ctx(), ActorCLI, KeyRequest{UserID: u.ID, Type: model.WireGuard, Admin: true}); err != nil {
		t.Fatal(err)
	}
	code, k1 := mgmtCall(t, app, "POST", "/access-keys", "")
	if code != 201 || k1["method"] != outline.DefaultMethod || k1["dataLimit"].(map[string]any)["bytes"] != float64(5000) ||
		!strings.Contains(k1["accessUrl"].(string), "@ss.example.net:8388/") {
		t.Fatalf("create: %d %v", code, k1)
	}
	code, k2 := mgmtCall(t, app, "POST", "/access-keys", `{"name":"amigo","method":"aes-128-gcm","password":"fixedpw"}`)
	if code != 201 || k2["password"] != "fixedpw" || k2["method"] != "aes-128-gcm" || k2["name"] != "amigo" {
		t.Fatalf("create with body: %d %v", code, k2)
	}
	owned, _, _ := n.svc.Keys(ctx(), store.KeyFilter{UserID: mustKey(t, n, k1["id"].(string)).UserID}, store.Page{})
	if len(owned) != 2 || owned[0].UserID == u.ID {
		t.Fatalf("manager keys: %+v", owned)
	}
	code, list := mgmtCall(t, app, "GET", "/access-keys", "")
	if keys := list["accessKeys"].([]any); code != 200 || len(keys) != 3 {
		t.Fatalf("list: %d %v", code, list)
	}
	id := k2["id"].(string)
	for _, c := range []struct {
		method, path, body string
		want               int
	}{
		{"PUT", "/access-keys/" + id + "/name", `{"name":"renamed"}`, 204},
		{"PUT", "/access-keys/" + id + "/data-limit", `{"limit":{"bytes":777}}`, 204},
		{"PUT", "/access-keys/nope/name", `{"name":"x"}`, 404},
		{"PUT", "/access-keys/" + cust.ID + "/data-limit", `{"limit":{"bytes":1}}`, 204},
		{"DELETE", "/access-keys/" + cust.ID + "/data-limit", "", 204},
	} {
		if code, body := mgmtCall(t, app, c.method, c.path, c.body); code != c.want {
			t.Fatalf("%s %s: %d %v, want %d", c.method, c.path, code, body, c.want)
		}
	}
	if code, k := mgmtCall(t, app, "GET", "/access-keys/"+id, ""); code != 200 || k["name"] != "renamed" ||
		k["dataLimit"].(map[string]any)["bytes"] != float64(777) {
		t.Fatalf("after edits: %d %v", code, k)
	}
	if k := mustKey(t, n, cust.ID); k.Limits.DataCap != 0 {
		t.Fatalf("customer key limit not removed: %+v", k.Limits)
	}

	// Usage within the last 30 days counts; older usage does not.
	now := n.clock.Now()
	for at, b := range map[time.Time]uint64{now.Add(-time.Hour): 100, now.Add(-20 * 24 * time.Hour): 23, now.Add(-40 * 24 * time.Hour): 5000} {
		if err := n.st.RecordUsage(at, []store.UsageSample{{ID: id, Rx: b}}); err != nil {
			t.Fatal(err)
		}
	}
	code, tr := mgmtCall(t, app, "GET", "/metrics/transfer", "")
	if b := tr["bytesTransferredByUserId"].(map[string]any); code != 200 || b[id] != float64(123) {
		t.Fatalf("transfer: %d %v", code, tr)
	}

	if code, _ := mgmtCall(t, app, "DELETE", "/access-keys/"+id, ""); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	if k := mustKey(t, n, id); k.Status != model.KeyRevoked {
		t.Fatalf("deleted key is %s", k.Status)
	}
	if code, _ := mgmtCall(t, app, "DELETE", "/access-keys/"+id, ""); code != 404 {
		t.Fatalf("second delete: %d", code)
	}
	if code, _ := mgmtCall(t, app, "GET", "/access-keys/"+id, ""); code != 404 {
		t.Fatalf("get deleted: %d", code)
	}
	if _, err := n.svc.OutlineManager("x").Key(ctx(), cust.ID); err != nil {
		t.Fatal(err)
	}
	wgKeys, _, _ := n.svc.Keys(ctx(), store.KeyFilter{UserID: u.ID, Status: model.KeyActive}, store.Page{})
	for _, k := range wgKeys {
		if _, err := n.svc.OutlineManager("x").Key(ctx(), k.ID); k.Type == model.WireGuard && !errors.Is(err, outline.ErrNotFound) {
			t.Fatalf("a WireGuard key seen by the Outline Manager: %v", err)
		}
	}
}

func mustKey(t *testing.T, n *testNode, id string) *model.Key {
	t.Helper()
	k, err := n.st.Key(id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
