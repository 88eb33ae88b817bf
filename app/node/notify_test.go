package node

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/app/logging"
	"github.com/usipipo/usipipo/app/notify"
)

// With --bot-token the node runs the notifier: the admins get the daily
// report, and a broadcast reaches a registered user, through the Bot API
// at --bot-api-url.
func TestNodeRunsNotifications(t *testing.T) {
	var mu sync.Mutex
	sent := map[int64][]string{}
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
		w.Header().Set("Content-Type", "application/json")
		switch method {
		case "getUpdates":
			time.Sleep(50 * time.Millisecond)
			w.Write([]byte(`{"ok":true,"result":[]}`))
		case "getStarTransactions":
			w.Write([]byte(`{"ok":true,"result":{"transactions":[]}}`))
		case "sendMessage":
			var in struct {
				ChatID int64  `json:"chat_id"`
				Text   string `json:"text"`
			}
			json.NewDecoder(r.Body).Decode(&in)
			mu.Lock()
			sent[in.ChatID] = append(sent[in.ChatID], in.Text)
			mu.Unlock()
			w.Write([]byte(`{"ok":true,"result":{"message_id":1,"date":1,"chat":{"id":1,"type":"private"}}}`))
		default:
			w.Write([]byte(`{"ok":true,"result":true}`))
		}
	}))
	defer fake.Close()
	r := start(t, testConfig(t, filepath.Join(t.TempDir(), "data"), "--bot-token", "123456:test-token",
		"--bot-api-url", fake.URL, "--admin-id", "77"))
	if r.node.Notify == nil {
		t.Fatal("no notifier with --bot-token")
	}
	got := func(chat int64, part string) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range sent[chat] {
			if strings.Contains(s, part) {
				return true
			}
		}
		return false
	}
	waitNotify(t, "the daily report", func() bool { return got(77, "📈") })

	ctx := context.Background()
	if _, err := r.node.Service.RegisterUser(ctx, app.ActorCLI, app.NewUser{TelegramID: 5150, Language: "en"}); err != nil {
		t.Fatal(err)
	}
	id, err := r.node.Notify.Broadcast(ctx, "cli", notify.Segment{Language: "en"}, "maintenance tonight")
	if err != nil {
		t.Fatal(err)
	}
	waitNotify(t, "the broadcast", func() bool { return got(5150, "maintenance tonight") })
	waitNotify(t, "the broadcast's status", func() bool {
		s, err := r.node.Notify.Status(id)
		return err == nil && s.State == notify.StateDone && s.Sent == 1
	})

	// An error logged by a part built before the notifier (the store's and
	// the planes' loggers are) still reaches the admins as an alert.
	logging.ForService(r.node.Log, "reconcile").Error("plane_failed", "error", "wireguard: device down")
	waitNotify(t, "the error alert", func() bool { return got(77, "device down") })
	r.stop()
}

func waitNotify(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
