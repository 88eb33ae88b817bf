package panel

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// GDPR from the panel: export everything stored about a user, and erase a
// user only when the form repeats the id; the erased user's keys are
// revoked and the personal fields gone.
func TestExportAndEraseUser(t *testing.T) {
	tp := startPanel(t)
	tp.login(tp.client, "", http.StatusSeeOther)
	tok := tp.csrf(tp.client, "/users")
	r := tp.post(tp.client, "/users", url.Values{"csrf": {tok}, "telegram_id": {"7070"}, "username": {"marta"}})
	uid := strings.TrimPrefix(r.header.Get("Location"), "/users/")
	r = tp.post(tp.client, "/keys", url.Values{"csrf": {tok}, "user": {uid}, "type": {"outline"}, "name": {"phone"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("create key: %d %.300s", r.status, r.body)
	}
	keyPath := r.header.Get("Location")
	if page := tp.get(tp.client, "/users/"+uid); !strings.Contains(page.body, `href="/users/`+uid+`/export"`) {
		t.Fatal("no export link on the user page")
	}

	exp := tp.get(tp.client, "/users/"+uid+"/export")
	var out struct {
		User struct {
			ID       string         `json:"id"`
			Personal map[string]any `json:"personal"`
		} `json:"user"`
		Keys []struct {
			ID string `json:"id"`
		} `json:"keys"`
	}
	if err := json.Unmarshal([]byte(exp.body), &out); err != nil || exp.status != 200 {
		t.Fatalf("export: %d %v %.300s", exp.status, err, exp.body)
	}
	if out.User.ID != uid || out.User.Personal["username"] != "marta" || len(out.Keys) != 1 ||
		exp.header.Get("Cache-Control") != "no-store" || !strings.HasPrefix(exp.header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("export %+v, headers %v", out, exp.header)
	}

	if r := tp.post(tp.client, "/users/"+uid+"/erase", url.Values{"csrf": {tok}, "confirm": {"yes"}}); r.status != 422 {
		t.Fatalf("erase without the id repeated: %d", r.status)
	}
	if r := tp.post(tp.client, "/users/"+uid+"/erase", url.Values{"confirm": {uid}}); r.status != http.StatusForbidden {
		t.Fatalf("erase without the CSRF token: %d", r.status)
	}
	if page := tp.get(tp.client, "/users/"+uid); !strings.Contains(page.body, "marta") {
		t.Fatal("refused erasures erased")
	}
	if r := tp.post(tp.client, "/users/"+uid+"/erase", url.Values{"csrf": {tok}, "confirm": {uid}}); r.status != http.StatusSeeOther {
		t.Fatalf("erase: %d %.300s", r.status, r.body)
	}
	page := tp.get(tp.client, "/users/"+uid)
	if !strings.Contains(page.body, `id="user-state">erased`) || strings.Contains(page.body, "marta") {
		t.Fatalf("erased user's page: %.800s", page.body)
	}
	if key := tp.get(tp.client, keyPath); !strings.Contains(key.body, "revoked") {
		t.Fatalf("an erased user's key: %.500s", key.body)
	}
}
