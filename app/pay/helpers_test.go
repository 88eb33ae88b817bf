package pay

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"testing"

	"github.com/usipipo/usipipo/app/apptest"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/keyring"
	"github.com/usipipo/usipipo/store/model"
)

const adminChat = 42

type world struct {
	t     testing.TB
	st    *store.Store
	svc   *Service
	bot   *fakeBot
	qva   *fakeQva
	clock *apptest.Clock
	dk    keyring.Key
	path  string
	plan  *model.Plan
	short *model.Plan
}

func ctx() context.Context { return context.Background() }

func newWorld(t testing.TB) *world {
	t.Helper()
	w := &world{t: t, bot: newFakeBot(t), qva: newFakeQva(t), clock: apptest.NewClock(apptest.Start())}
	var err error
	if w.dk, err = keyring.GenerateKey(rand.Reader); err != nil {
		t.Fatal(err)
	}
	w.path = filepath.Join(t.TempDir(), "usipipo.db")
	w.open()
	t.Cleanup(func() { w.close() })
	w.plan = w.putPlan("basic", 30, 100, 299)
	w.short = w.putPlan("week", 7, 30, 99)
	if err := w.svc.SetQvaPayCredentials(ctx(), "test", w.qva.appID, w.qva.appSc); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *world) open() {
	w.t.Helper()
	st, err := store.Open(store.Options{Path: w.path})
	if err != nil {
		w.t.Fatal(err)
	}
	w.st = st
	w.svc, err = New(Options{Store: st, DataKey: w.dk, BotToken: w.bot.token, BotAPIURL: w.bot.url, QvaPayURL: w.qva.url,
		AdminChats: []int64{adminChat}, Now: w.clock.Now})
	if err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) close() {
	if w.st == nil {
		return
	}
	if err := w.svc.Close(); err != nil {
		w.t.Errorf("closing the service: %v", err)
	}
	if err := w.st.Check(); err != nil {
		w.t.Errorf("store check: %v", err)
	}
	w.st.Close()
	w.st = nil
}

func (w *world) do(cmd store.Command) {
	w.t.Helper()
	if err := w.st.Do(ctx(), store.Meta{At: w.clock.Now(), Actor: "test"}, cmd); err != nil {
		w.t.Fatalf("%s: %v", cmd.Kind(), err)
	}
}

func (w *world) id() string {
	id, err := model.NewID(w.clock.Now(), nil)
	if err != nil {
		w.t.Fatal(err)
	}
	return id
}

func (w *world) putPlan(name string, days int, stars, cents int64) *model.Plan {
	p := model.Plan{ID: w.id(), Name: name, DurationDays: days, MaxKeys: 2, DataCapBytes: 10 << 30,
		Protocols: []model.KeyType{model.WireGuard, model.Outline}, PriceStars: stars, PriceUSDCents: cents, Active: true}
	w.do(store.PutPlan{Plan: p})
	got, err := w.st.Plan(p.ID)
	if err != nil {
		w.t.Fatal(err)
	}
	return got
}

var tgSeq int64 = 5000

func (w *world) user(referrer string) (id string, tg int64) {
	w.t.Helper()
	tgSeq++
	id = w.id()
	c := store.CreateUser{ID: id, TelegramID: tgSeq, UserKey: model.Sealed("k"), Language: "es", ReferralCode: "r" + id[18:]}
	if referrer != "" {
		c.ReferredBy, c.ReferralCredits = referrer, 50
	}
	w.do(c)
	return id, tgSeq
}

func (w *world) payment(id string) *model.Payment {
	w.t.Helper()
	p, err := w.st.Payment(id)
	if err != nil {
		w.t.Fatal(err)
	}
	return p
}

func (w *world) subs(userID string) []model.Subscription {
	ss, _, err := w.st.Subscriptions(userID, store.Page{Limit: store.MaxLimit})
	if err != nil {
		w.t.Fatal(err)
	}
	return ss
}

func (w *world) audits(userID, action string) int {
	es, _, err := w.st.Audit(store.AuditFilter{UserID: userID, Action: action}, store.Page{Limit: store.MaxLimit})
	if err != nil {
		w.t.Fatal(err)
	}
	return len(es)
}

func (w *world) allAudits(action string) int {
	n := 0
	p := store.Page{Limit: store.MaxLimit}
	for {
		es, next, err := w.st.Audit(store.AuditFilter{}, p)
		if err != nil {
			w.t.Fatal(err)
		}
		for _, e := range es {
			if e.Action == action {
				n++
			}
		}
		if next == "" {
			return n
		}
		p.After = next
	}
}

func (w *world) update(body map[string]any) *Update {
	w.t.Helper()
	body["update_id"] = 1
	u, err := DecodeUpdate(mustJSON(body))
	if err != nil {
		w.t.Fatal(err)
	}
	return u
}

// starsInvoice opens a Stars invoice and returns it and its payload.
func (w *world) starsInvoice(userID string, pr Product) (*Invoice, string) {
	w.t.Helper()
	inv, err := w.svc.SendStarsInvoice(ctx(), "test", userID, pr)
	if err != nil {
		w.t.Fatal(err)
	}
	return inv, w.payment(inv.PaymentID).Payload
}
