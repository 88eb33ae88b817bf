package node

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/store/model"
)

// The node gives the API its payment service (settings show the
// catalogue) and, without a bot, answers broadcasts with 503.
func TestNodeWiresPaymentsAndBroadcastsIntoTheAPI(t *testing.T) {
	r := start(t, testConfig(t, filepath.Join(t.TempDir(), "data")))
	k, err := r.node.Service.CreateAPIKey(context.Background(), app.ActorCLI, "wiring", []model.Scope{model.ScopeAdmin}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + r.node.HTTPAddr.String() + "/api/v1"
	call := func(method, path string, body any) (int, []byte) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, base+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+k.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out bytes.Buffer
		out.ReadFrom(resp.Body)
		return resp.StatusCode, out.Bytes()
	}
	if st, body := call("GET", "/settings", nil); st != 200 || !bytes.Contains(body, []byte(`"catalogue"`)) {
		t.Fatalf("settings: %d %s", st, body)
	}
	if st, body := call("POST", "/broadcasts", map[string]string{"text": "hola"}); st != 503 {
		t.Fatalf("broadcast without a bot: %d %s", st, body)
	}
	if st, body := call("GET", "/stats?days=3", nil); st != 200 || !bytes.Contains(body, []byte(`"days"`)) {
		t.Fatalf("stats: %d %s", st, body)
	}
	// A bot token set through the API is what the next start uses when
	// --bot-token is not given.
	const tok = "4242:AAH-a-token-set-from-the-api_x"
	if st, body := call("PUT", "/settings/bot-token", map[string]string{"token": tok}); st != 204 {
		t.Fatalf("bot token: %d %s", st, body)
	}
	if r.node.Config.BotToken != "" {
		t.Fatal("test config has a bot token")
	}
	r.node.useStoredBotToken()
	if r.node.Config.BotToken.Reveal() != tok {
		t.Fatal("stored bot token not taken")
	}
}
