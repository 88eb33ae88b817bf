package pay

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/usipipo/usipipo/store"
)

const testWebhookSecret = "s3cret-token_0123456789abcdefghijklmnop"

// startWebhook runs a webhook intake for h until the test ends and returns
// an app serving it at /tg/webhook, once it accepts updates.
func (w *world) startWebhook(h Handler) *fiber.App {
	w.t.Helper()
	wh, err := NewIntake(w.st, h, 4, nil).NewWebhook(testWebhookSecret)
	if err != nil {
		w.t.Fatal(err)
	}
	app := newFiber()
	app.Post("/tg/webhook", wh.Handler)
	c, cancel := context.WithCancel(ctx())
	done := make(chan struct{})
	go func() { defer close(done); wh.Run(c) }()
	w.t.Cleanup(func() { cancel(); <-done })
	waitFor(w.t, "Run", func() bool { return postTB(w.t, app, "/tg/webhook", "{}", testWebhookSecret) == 400 })
	return app
}

// postTB is post for any testing.TB.
func postTB(t testing.TB, app *fiber.App, path, body, secret string) int {
	t.Helper()
	req := httptest.NewRequest("POST", path, strings.NewReader(body))
	req.Header.Set(WebhookSecretHeader, secret)
	resp, err := app.Test(req, 5000)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// updateKeys lists the intake's telemetry keys naming update id.
func updateKeys(t testing.TB, st *store.Store, id int64) []string {
	t.Helper()
	var keys []string
	err := st.ScanTelemetry(store.Updates, "", func(k, _ []byte) bool {
		if strings.HasSuffix(string(k), updKey("", id)) {
			keys = append(keys, string(k))
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func TestWebhookPersistsBeforeAck(t *testing.T) {
	w := newWorld(t)
	rec := &recorder{fail: 1} // the first handling fails: Run retries it
	wh, err := NewIntake(w.st, rec, 4, nil).NewWebhook(testWebhookSecret)
	if err != nil {
		t.Fatal(err)
	}
	app := newFiber()
	app.Post("/tg/webhook", wh.Handler)
	body := string(mustJSON(map[string]any{"update_id": 9, "message": map[string]any{"message_id": 1, "chat": map[string]any{"id": 5}, "text": "hi"}}))
	if code := post(t, app, "/tg/webhook", body, testWebhookSecret); code != 503 {
		t.Fatalf("before Run: %d, want 503 (Telegram retries)", code)
	}
	c, cancel := context.WithCancel(ctx())
	done := make(chan struct{})
	go func() { defer close(done); wh.Run(c) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "Run", func() bool { return post(t, app, "/tg/webhook", `{"update_id":0}`, testWebhookSecret) == 400 })
	for _, secret := range []string{"wrong", "", testWebhookSecret + "x", strings.ToUpper(testWebhookSecret)} {
		if code := post(t, app, "/tg/webhook", body, secret); code != 401 {
			t.Fatalf("secret %q: %d", secret, code)
		}
	}
	if keys := updateKeys(t, w.st, 9); len(keys) != 0 {
		t.Fatalf("a refused update was stored: %v", keys)
	}
	for _, bad := range []string{"", "not json", `{"update_id":-3}`, `[]`} {
		if code := post(t, app, "/tg/webhook", bad, testWebhookSecret); code != 400 {
			t.Fatalf("body %q: %d, want 400", bad, code)
		}
	}
	if code := post(t, app, "/tg/webhook", body, testWebhookSecret); code != 200 {
		t.Fatalf("webhook %d", code)
	}
	if keys := updateKeys(t, w.st, 9); len(keys) == 0 {
		t.Fatal("acknowledged but not persisted")
	}
	waitFor(t, "the retried update", func() bool { return len(rec.seen()) == 1 })
	waitFor(t, "its receipt", func() bool {
		keys := updateKeys(t, w.st, 9)
		return len(keys) == 1 && keys[0] == updKey(updDone, 9)
	})
	// Redelivered after it was processed: acknowledged, not handled again.
	if code := post(t, app, "/tg/webhook", body, testWebhookSecret); code != 200 {
		t.Fatalf("redelivery %d", code)
	}
	next := string(mustJSON(map[string]any{"update_id": 10, "message": map[string]any{"message_id": 2, "chat": map[string]any{"id": 5}, "text": "again"}}))
	if code := post(t, app, "/tg/webhook", next, testWebhookSecret); code != 200 {
		t.Fatalf("next %d", code)
	}
	waitFor(t, "the next update", func() bool { return len(rec.seen()) >= 2 })
	if got := rec.seen(); len(got) != 2 || got[0] != 9 || got[1] != 10 {
		t.Fatalf("handled %v, want [9 10]", got)
	}
}

// An update persisted but not processed when the node stopped is handled
// when the webhook intake runs again.
func TestWebhookResumesAfterRestart(t *testing.T) {
	w := newWorld(t)
	in := NewIntake(w.st, &recorder{}, 4, nil)
	raw := mustJSON(map[string]any{"update_id": 21, "message": map[string]any{"message_id": 1, "chat": map[string]any{"id": 6}, "text": "hi"}})
	if _, err := in.Persist([]json.RawMessage{raw}, 0); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	w.startWebhook(rec)
	waitFor(t, "the resumed update", func() bool { return len(rec.seen()) == 1 })
}

func TestCheckWebhookSecret(t *testing.T) {
	for s, ok := range map[string]bool{"a": true, testWebhookSecret: true, strings.Repeat("A", 256): true,
		"": false, strings.Repeat("A", 257): false, "a b": false, "a=b": false, "ñ": false, "a/b": false} {
		if err := CheckWebhookSecret(s); (err == nil) != ok {
			t.Errorf("%q: %v", s, err)
		}
	}
}

// FuzzWebhookBody: whatever the body, a request with the secret is refused
// (400) unless it is an update, and an acknowledged one is persisted.
func FuzzWebhookBody(f *testing.F) {
	w := newWorld(f)
	app := w.startWebhook(HandlerFunc(func(context.Context, *Update) error { return nil }))
	f.Add([]byte(`{"update_id":5,"message":{"message_id":1,"chat":{"id":5},"text":"/start"}}`))
	f.Add([]byte(`{"update_id":6,"callback_query":{"id":"x","from":{"id":9}}}`))
	f.Add([]byte(`{"update_id":7,"pre_checkout_query":{"id":"q","from":{"id":9},"currency":"XTR","total_amount":1,"invoice_payload":"p"}}`))
	f.Add([]byte(`{"update_id":1e30}`))
	f.Add([]byte(`{"update_id":0}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, body []byte) {
		code := post(t, app, "/tg/webhook", string(body), testWebhookSecret)
		u, err := DecodeUpdate(body)
		switch {
		case err != nil && code != 400:
			t.Fatalf("undecodable body answered %d", code)
		case err == nil && code != 200:
			t.Fatalf("update %d answered %d", u.ID, code)
		case err == nil && len(updateKeys(t, w.st, u.ID)) == 0:
			t.Fatalf("update %d acknowledged but not persisted", u.ID)
		}
	})
}
