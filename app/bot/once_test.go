package bot

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app/bot/bottest"
	"github.com/usipipo/usipipo/app/pay"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// crashOnce sits between the intake and the bot. The first time it sees an
// update it lets the bot handle it in full, then puts the sender's
// conversation state back and fails: as if the process died after the
// bot's commands were committed but before its state write and the
// update's done-receipt were durable. The intake then hands the same
// update (same update_id) to the bot again.
type crashOnce struct {
	h    pay.Handler
	st   *store.Store
	mu   sync.Mutex
	seen map[int64]bool
	done chan int64
}

func (c *crashOnce) HandleUpdate(ctx context.Context, u *pay.Update) error {
	var from struct {
		Message       struct{ From struct{ ID int64 } } `json:"message"`
		CallbackQuery struct{ From struct{ ID int64 } } `json:"callback_query"`
	}
	if err := json.Unmarshal(u.Raw, &from); err != nil {
		return err
	}
	tg := max(from.Message.From.ID, from.CallbackQuery.From.ID)
	before, err := c.st.GetTelemetry(store.Conversations, convKey(tg))
	if err != nil {
		return err
	}
	if err := c.h.HandleUpdate(ctx, u); err != nil {
		return err
	}
	c.mu.Lock()
	first := !c.seen[u.ID]
	c.seen[u.ID] = true
	c.mu.Unlock()
	if first {
		if err := c.st.PutTelemetry(store.Conversations, map[string][]byte{convKey(tg): before}); err != nil {
			return err
		}
		return errors.New("simulated crash before the done-receipt")
	}
	c.done <- u.ID
	return nil
}

// replayer feeds updates through the real poller and intake, each handled
// twice (see crashOnce).
type replayer struct {
	w *world
	h *crashOnce
}

func newReplayer(t *testing.T, w *world) *replayer {
	h := &crashOnce{h: w.handler, st: w.st, seen: map[int64]bool{}, done: make(chan int64, 16)}
	intake := pay.NewIntake(w.st, h, 4, nil)
	poller, err := pay.NewPoller(pay.PollerOptions{API: pay.NewBotAPI(w.api.URL, testToken, nil), Intake: intake,
		Token: testToken, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { poller.Run(pctx); close(stopped) }()
	t.Cleanup(func() { cancel(); <-stopped; poller.Close() })
	return &replayer{w: w, h: h}
}

// deliver enqueues one update and waits until the bot handled it twice.
func (r *replayer) deliver(c *chat, build func(int64) json.RawMessage) []bottest.Event {
	r.w.t.Helper()
	id := r.w.api.Enqueue(build)
	deadline := time.After(20 * time.Second)
	for {
		select {
		case got := <-r.h.done:
			if got == id {
				return c.take()
			}
		case <-deadline:
			r.w.t.Fatalf("update %d was not handled twice", id)
		}
	}
}

func (r *replayer) send(c *chat, text string) []bottest.Event {
	return r.deliver(c, bottest.Text(c.u, text))
}

func (r *replayer) press(c *chat, evs []bottest.Event, label string) []bottest.Event {
	r.w.t.Helper()
	for i := len(evs) - 1; i >= 0; i-- {
		if b, ok := evs[i].FindButton(label); ok {
			return r.deliver(c, bottest.Press(c.u, evs[i].MessageID, b.Data))
		}
	}
	r.w.t.Fatalf("no button %q in %s", label, dump(evs))
	return nil
}

// An admin's /credits and /grant handled twice grant once; two updates
// grant twice.
func TestRedeliveredAdminGrantsApplyOnce(t *testing.T) {
	w := newWorld(t)
	plan := w.putPlan("Basic", 100, 300, model.WireGuard)
	admin, c := w.chat(adminTG, "en"), w.chat(7301, "en")
	admin.send("/start")
	c.send("/start")
	u, _ := w.st.UserByTelegram(7301)
	rp := newReplayer(t, w)

	mustContain(t, rp.send(admin, "/credits 7301 5"), "Balance: 5")
	if bal, _ := w.st.Balance(u.ID); bal != 5 {
		t.Fatalf("balance %d after one /credits handled twice, want 5", bal)
	}
	rp.send(admin, "/credits 7301 5")
	if bal, _ := w.st.Balance(u.ID); bal != 10 {
		t.Fatalf("balance %d after two /credits, want 10", bal)
	}

	rp.send(admin, "/grant 7301 basic 1")
	sub, _, err := w.st.CurrentPlan(u.ID, w.now())
	if err != nil {
		t.Fatal(err)
	}
	month := time.Duration(plan.DurationDays) * 24 * time.Hour
	if left := time.Until(sub.ExpiresAt); left > month+time.Hour || left < month-time.Hour {
		t.Fatalf("one /grant handled twice left %v, want one month", left)
	}
	rp.send(admin, "/grant 7301 basic 1")
	sub, _, _ = w.st.CurrentPlan(u.ID, w.now())
	if left := time.Until(sub.ExpiresAt); left < 2*month-time.Hour {
		t.Fatalf("two /grant left %v, want two months", left)
	}
}

// A key or MTProto secret asked for by an update handled twice is issued
// once, and a rotation rotates once; other updates still do each again.
func TestRedeliveredKeyActionsApplyOnce(t *testing.T) {
	w := newWorld(t)
	w.putPlan("Basic", 100, 300, model.WireGuard, model.MTProto)
	admin, c := w.chat(adminTG, "en"), w.chat(7302, "en")
	admin.send("/start")
	c.send("/start")
	mustContain(t, admin.send("/grant 7302 basic 1"), "Basic")
	u, _ := w.st.UserByTelegram(7302)
	rp := newReplayer(t, w)
	keys := func() []model.Key {
		ks, _, _ := w.st.Keys(store.KeyFilter{UserID: u.ID}, store.Page{Limit: 10})
		return ks
	}

	rp.press(c, c.send("/newkey"), "WireGuard")
	if ks := keys(); len(ks) != 1 {
		t.Fatalf("%d keys after one creation handled twice, want 1", len(ks))
	}
	rp.press(c, c.send("/newkey"), "WireGuard")
	ks := keys()
	if len(ks) != 2 {
		t.Fatalf("%d keys after two creations, want 2", len(ks))
	}

	k := ks[0]
	card := c.send("/keys")
	card = c.press(card, k.Name)
	evs := rp.press(c, card, "Rotate")
	var confs []string
	for _, e := range evs {
		if e.Method == "sendDocument" {
			confs = append(confs, string(e.File.Data))
		}
	}
	if len(confs) != 2 || confs[0] != confs[1] {
		t.Fatalf("a rotation handled twice sent %d configs, differing: %v", len(confs), len(confs) == 2)
	}
	after, _ := w.st.Key(k.ID)
	if after.Public == k.Public {
		t.Fatal("the rotation did not rotate")
	}
	rp.press(c, card, "Rotate")
	if again, _ := w.st.Key(k.ID); again.Public == after.Public {
		t.Fatal("a second rotation did not rotate again")
	}

	// A user holds one MTProto secret, so without the key the repeat would
	// be refused; with it both handlings send the first secret's link.
	evs = rp.press(c, c.send("/newkey"), "MTProto")
	var links []string
	for _, e := range evs {
		if strings.Contains(e.Text, "tg://proxy") {
			links = append(links, e.Text)
		}
	}
	if len(links) != 2 || links[0] != links[1] {
		t.Fatalf("an MTProto creation handled twice sent %d links:\n%s", len(links), dump(evs))
	}
	if ps, _, _ := w.st.Proxies(u.ID, store.Page{Limit: 10}); len(ps) != 1 {
		t.Fatalf("%d MTProto secrets, want 1", len(ps))
	}
}

// The last step of the ticket flow and of a reply, handled twice after a
// crash that lost the conversation's end, open one ticket and add one
// message; a second flow opens or adds another.
func TestRedeliveredTicketStepsApplyOnce(t *testing.T) {
	w := newWorld(t)
	admin, c := w.chat(adminTG, "en"), w.chat(7303, "en")
	admin.send("/start")
	c.send("/start")
	u, _ := w.st.UserByTelegram(7303)
	rp := newReplayer(t, w)
	tickets := func() []model.Ticket {
		ts, _, _ := w.st.Tickets("", u.ID, store.Page{Limit: 10})
		return ts
	}

	c.send("/support")
	c.send("First subject")
	rp.send(c, "It does not connect")
	if ts := tickets(); len(ts) != 1 {
		t.Fatalf("%d tickets after one opening handled twice, want 1", len(ts))
	}
	admin.take()

	admin.press(admin.press(admin.send("/queue"), "First subject"), "Reply")
	rp.send(admin, "Try rotating the key")
	if ts := tickets(); len(ts) != 1 || len(ts[0].Messages) != 2 {
		t.Fatalf("after one reply handled twice: %d tickets, messages %d, want 1 and 2", len(ts), len(ts[0].Messages))
	}
	admin.press(admin.press(admin.send("/queue"), "First subject"), "Reply")
	rp.send(admin, "Any news?")
	if ts := tickets(); len(ts[0].Messages) != 3 {
		t.Fatalf("after two replies: %d messages, want 3", len(ts[0].Messages))
	}

	c.send("/support")
	c.send("Second subject")
	rp.send(c, "Still slow")
	if ts := tickets(); len(ts) != 2 {
		t.Fatalf("%d tickets after two openings, want 2", len(ts))
	}
}
