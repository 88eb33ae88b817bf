package bot

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/app/apptest"
	"github.com/usipipo/usipipo/app/bot/bottest"
	"github.com/usipipo/usipipo/app/pay"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/keyring"
	"github.com/usipipo/usipipo/store/model"
)

const (
	testToken = "4242:TEST-bot-token"
	adminTG   = 900001
)

// world is a bot on a real store, service layer and payment service,
// talking to a fake Bot API.
type world struct {
	t       testing.TB
	st      *store.Store
	app     *app.Service
	pay     *pay.Service
	bot     *Bot
	handler pay.Handler // what the intake calls: payments, then the bot
	api     *bottest.Server
	qva     *bottest.QvaPay
	dk      keyring.Key
	signKey []byte

	mu     sync.Mutex
	nextID int64
}

func ctx() context.Context { return context.Background() }

func newWorld(t testing.TB) *world {
	t.Helper()
	w := &world{t: t, nextID: 1}
	var err error
	w.api, err = bottest.New(testToken)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.api.Close)
	if w.qva, err = bottest.NewQvaPay("app-1", "qva-secret"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.qva.Close)
	// The bot's tests run on the real time (Now nil: time.Now), as the
	// payment service beside it does.
	n := apptest.New(t, func(o *app.Options) { o.AdminIDs, o.Now = []int64{adminTG}, nil })
	w.st, w.app, w.dk = n.Store, n.Svc, n.DataKey
	w.pay, err = pay.New(pay.Options{Store: w.st, DataKey: w.dk, BotToken: testToken, BotAPIURL: w.api.URL, QvaPayURL: w.qva.URL,
		AdminChats: []int64{adminTG}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.pay.SetQvaPayCredentials(ctx(), "test", "app-1", "qva-secret"); err != nil {
		t.Fatal(err)
	}
	w.signKey = make([]byte, 32)
	rand.Read(w.signKey)
	w.newBot()
	t.Cleanup(func() { w.pay.Close() })
	return w
}

// newBot starts (or restarts) the bot on the same store.
func (w *world) newBot() {
	b, err := New(Options{App: w.app, Pay: w.pay, Token: testToken, APIURL: w.api.URL, SignKey: w.signKey,
		Admins: []int64{adminTG}, Rate: 1000, Burst: 1000})
	if err != nil {
		w.t.Fatal(err)
	}
	name := "usipipo_test_bot"
	b.username.Store(&name)
	w.bot = b
	w.pay.SetHandler(b)
	w.handler = b.AfterPayments(w.pay)
}

// deliver hands one update to the intake's handler, as the poller would.
func (w *world) deliver(build func(int64) json.RawMessage) {
	w.t.Helper()
	w.mu.Lock()
	id := w.nextID
	w.nextID++
	w.mu.Unlock()
	u, err := pay.DecodeUpdate(build(id))
	if err != nil {
		w.t.Fatal(err)
	}
	if err := w.handler.HandleUpdate(ctx(), u); err != nil {
		w.t.Fatalf("update %d: %v", id, err)
	}
}

func (w *world) putPlan(name string, stars, cents int64, protos ...model.KeyType) *model.Plan {
	w.t.Helper()
	p, err := w.app.PutPlan(ctx(), app.ActorCLI, app.PlanSpec{Name: name, DurationDays: 30, DataCapBytes: 50 << 30, MaxKeys: 2,
		Protocols: protos, PriceStars: stars, PriceUSDCents: cents})
	if err != nil {
		w.t.Fatal(err)
	}
	return p
}

// chat is one Telegram user's conversation with the bot.
type chat struct {
	w    *world
	u    bottest.User
	seen int
}

func (w *world) chat(id int64, lang string) *chat {
	return &chat{w: w, u: bottest.User{ID: id, FirstName: "User" + lang, Username: "user" + lang, Lang: lang}}
}

// take returns what the bot did for this user since the last step.
func (c *chat) take() []bottest.Event {
	var out []bottest.Event
	evs := c.w.api.Events(c.seen)
	for _, e := range evs {
		if e.Chat == c.u.ID || (e.Chat == 0 && e.Method != "getMe") {
			out = append(out, e)
		}
	}
	c.seen += len(evs)
	return out
}

func (c *chat) send(text string) []bottest.Event {
	c.w.deliver(bottest.Text(c.u, text))
	return c.take()
}

// press presses the button whose text contains label on the newest
// message (or edit) that has it.
func (c *chat) press(evs []bottest.Event, label string) []bottest.Event {
	c.w.t.Helper()
	for i := len(evs) - 1; i >= 0; i-- {
		if b, ok := evs[i].FindButton(label); ok {
			c.w.deliver(bottest.Press(c.u, evs[i].MessageID, b.Data))
			return c.take()
		}
	}
	c.w.t.Fatalf("no button %q in %s", label, dump(evs))
	return nil
}

// texts joins what the user was shown.
func texts(evs []bottest.Event) string {
	var sb strings.Builder
	for _, e := range evs {
		sb.WriteString(e.Text + "\n")
	}
	return sb.String()
}

func dump(evs []bottest.Event) string {
	var sb strings.Builder
	for _, e := range evs {
		b, _ := json.Marshal(e.Buttons)
		sb.WriteString(e.Method + ": " + e.Text + " " + string(b) + "\n")
	}
	return sb.String()
}

func find(evs []bottest.Event, method string) *bottest.Event {
	for i := range evs {
		if evs[i].Method == method {
			return &evs[i]
		}
	}
	return nil
}

func mustContain(t testing.TB, evs []bottest.Event, want ...string) {
	t.Helper()
	all := texts(evs)
	for _, s := range want {
		if !strings.Contains(all, s) {
			t.Fatalf("the user did not see %q; they saw:\n%s", s, dump(evs))
		}
	}
}

func findLast(evs []bottest.Event, method string) *bottest.Event {
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Method == method {
			return &evs[i]
		}
	}
	return nil
}

func (w *world) now() time.Time { return time.Now().UTC() }

func (w *world) id() string {
	id, err := model.NewID(time.Now(), nil)
	if err != nil {
		w.t.Fatal(err)
	}
	return id
}

// menuOf is the newest message (or edit) with buttons.
func menuOf(evs []bottest.Event) bottest.Event {
	for i := len(evs) - 1; i >= 0; i-- {
		if len(evs[i].Buttons) > 0 {
			return evs[i]
		}
	}
	return bottest.Event{}
}
