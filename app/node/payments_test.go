package node

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// With --bot-token the node polls the Bot API at --bot-api-url for updates
// and reconciles Stars transactions; a local server speaking the Bot API's
// JSON stands in for Telegram.
func TestNodePollsTheBotAPI(t *testing.T) {
	var mu sync.Mutex
	calls := map[string]int{}
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
		mu.Lock()
		calls[method]++
		mu.Unlock()
		if !strings.HasPrefix(r.URL.Path, "/bot123456:test-token/") {
			http.Error(w, `{"ok":false,"error_code":401,"description":"Unauthorized"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch method {
		case "getUpdates":
			time.Sleep(50 * time.Millisecond)
			w.Write([]byte(`{"ok":true,"result":[]}`))
		case "getStarTransactions":
			w.Write([]byte(`{"ok":true,"result":{"transactions":[]}}`))
		default:
			w.Write([]byte(`{"ok":true,"result":true}`))
		}
	}))
	defer fake.Close()
	r := start(t, testConfig(t, filepath.Join(t.TempDir(), "data"), "--bot-token", "123456:test-token", "--bot-api-url", fake.URL))
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		polled, reconciled := calls["getUpdates"], calls["getStarTransactions"]
		mu.Unlock()
		if polled > 0 && reconciled > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Bot API calls %v", calls)
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.stop()
	if strings.Contains(r.logs.String(), "test-token") {
		t.Fatal("the bot token is in the logs")
	}
}
