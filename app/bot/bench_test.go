package bot

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/app/bot/bottest"
	"github.com/usipipo/usipipo/app/pay"
)

// BenchmarkBotUpdates measures button presses ("profile": a signed
// callback, a user lookup, the profile view from the store, an answer and
// an edit) processed end to end — getUpdates from the stand-in, persisted
// by the intake, handled, answered — with 1, 8 or 64 users' presses in
// flight, and reports updates/s and the p50/p99 latency from the update's
// arrival at the stand-in to the bot's edit. The baseline runs the same
// poller and intake with a handler that only sends one message. The
// persist-first variants are the intake's old order (an update handled
// only after its fsync), the same-run baseline of handling it while it is
// fsynced.
func BenchmarkBotUpdates(b *testing.B) {
	for _, persistFirst := range []bool{false, true} {
		prefix := ""
		if persistFirst {
			prefix = "persist-first/"
		}
		for _, inflight := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("%sinflight=%d", prefix, inflight), func(b *testing.B) { benchUpdates(b, inflight, false, persistFirst) })
		}
		b.Run(prefix+"baseline-echo/inflight=1", func(b *testing.B) { benchUpdates(b, 1, true, persistFirst) })
	}
}

func benchUpdates(b *testing.B, inflight int, echo, persistFirst bool) {
	w := newWorld(b)
	const users = 64
	presses := make([]func(int64) json.RawMessage, users)
	for i := range users {
		tg := int64(700000 + i)
		if _, err := w.app.RegisterUser(ctx(), app.ActorCLI, app.NewUser{TelegramID: tg, Language: "en"}); err != nil {
			b.Fatal(err)
		}
		u := bottest.User{ID: tg, FirstName: "U", Lang: "en"}
		presses[i] = bottest.Press(u, 1, w.bot.cbData(tg, "profile"))
	}
	handler := w.handler
	if echo {
		api := pay.NewBotAPI(w.api.URL, testToken, nil)
		handler = pay.HandlerFunc(func(ctx context.Context, u *pay.Update) error {
			var cb struct {
				CallbackQuery struct {
					From struct {
						ID int64 `json:"id"`
					} `json:"from"`
				} `json:"callback_query"`
			}
			json.Unmarshal(u.Raw, &cb)
			return api.Call(ctx, "editMessageText", map[string]any{"chat_id": cb.CallbackQuery.From.ID, "message_id": 1, "text": "ok"}, nil)
		})
	}
	var mu sync.Mutex
	pushed := map[int64]time.Time{}
	lat := make([]time.Duration, 0, b.N)
	window := make(chan struct{}, inflight)
	done := make(chan struct{})
	w.api.Hook = func(e bottest.Event) {
		if e.Method != "editMessageText" {
			return
		}
		mu.Lock()
		t0, ok := pushed[e.Chat]
		if ok {
			lat = append(lat, time.Since(t0))
			delete(pushed, e.Chat)
		}
		n := len(lat)
		mu.Unlock()
		if ok {
			<-window
			if n == b.N {
				close(done)
			}
		}
	}
	intake := pay.NewIntake(w.st, handler, 32, nil)
	if persistFirst {
		intake.PersistFirst()
	}
	poller, err := pay.NewPoller(pay.PollerOptions{API: pay.NewBotAPI(w.api.URL, testToken, nil), Intake: intake,
		Token: testToken + strconv.Itoa(inflight) + b.Name(), Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	pctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { poller.Run(pctx); close(stopped) }()
	defer func() { cancel(); <-stopped; poller.Close() }()

	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		window <- struct{}{}
		tg := int64(700000 + i%users)
		for {
			mu.Lock()
			_, busy := pushed[tg]
			if !busy {
				pushed[tg] = time.Now()
			}
			mu.Unlock()
			if !busy {
				break
			}
			tg = int64(700000 + (int(tg)-700000+1)%users) // that user's press is still in flight
		}
		w.api.Enqueue(presses[tg-700000])
	}
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatal("answers missing")
	}
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "updates/s")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
}

// BenchmarkBotHandler is the bot's own share of an update: the same press
// handed straight to the intake's handler, without polling or persisting.
func BenchmarkBotHandler(b *testing.B) {
	w := newWorld(b)
	const tg = 710000
	if _, err := w.app.RegisterUser(ctx(), app.ActorCLI, app.NewUser{TelegramID: tg, Language: "en"}); err != nil {
		b.Fatal(err)
	}
	press := bottest.Press(bottest.User{ID: tg, FirstName: "U", Lang: "en"}, 1, w.bot.cbData(tg, "profile"))
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		u, err := pay.DecodeUpdate(press(int64(i + 1)))
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if err := w.handler.HandleUpdate(ctx(), u); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
}
