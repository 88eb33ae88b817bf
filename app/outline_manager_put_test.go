package app

import (
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/usipipo/usipipo/store/model"
	"github.com/usipipo/usipipo/vpn/outline"
)

var _ outline.KeyCreatorWithID = (*OutlineManager)(nil)

// TestOutlineManagerPutKeyWithID is PUT /access-keys/{id} on the service
// layer: a key created under a chosen node id (201), a second PUT of that
// id (409), an id of another form (400), and an id a WireGuard key holds
// (409): nothing is created by a refused call.
func TestOutlineManagerPutKeyWithID(t *testing.T) {
	n := newTestNode(t)
	app := fiber.New()
	outline.MountManagement(app.Group("/Sec"), n.svc.OutlineManager("1.2.3"))
	id, err := n.svc.newID(n.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	code, k := mgmtCall(t, app, "PUT", "/access-keys/"+id, `{"name":"elegida","method":"aes-256-gcm","password":"pw-elegida"}`)
	if code != 201 || k["id"] != id || k["name"] != "elegida" || k["method"] != "aes-256-gcm" || k["password"] != "pw-elegida" {
		t.Fatalf("put: %d %v", code, k)
	}
	if rec := mustKey(t, n, id); rec.Type != model.Outline || rec.Status != model.KeyActive || rec.Name != "elegida" {
		t.Fatalf("stored key %+v", rec)
	}
	if code, got := mgmtCall(t, app, "GET", "/access-keys/"+id, ""); code != 200 || got["password"] != "pw-elegida" {
		t.Fatalf("get: %d %v", code, got)
	}
	u, _ := n.svc.RegisterUser(ctx(), ActorCLI, NewUser{TelegramID: 12})
	wg, err := n.svc.CreateKey(ctx(), ActorCLI, KeyRequest{UserID: u.ID, Type: model.WireGuard, Admin: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id   string
		want int
	}{{id, 409}, {wg.ID, 409}, {"my-identifier", 400}} {
		if code, body := mgmtCall(t, app, "PUT", "/access-keys/"+c.id, ""); code != c.want {
			t.Fatalf("put %s: %d %v, want %d", c.id, code, body, c.want)
		}
	}
	if code, list := mgmtCall(t, app, "GET", "/access-keys", ""); code != 200 || len(list["accessKeys"].([]any)) != 1 {
		t.Fatalf("refused calls created keys: %v", list)
	}
}
