package notify

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// A broadcast to 500 users under a 429 storm, with blocked users, cut by a
// context cancel mid-way and resumed by a new notifier, messages each user
// exactly once, marks the blocked ones, and never breaks the limits nor a
// retry_after.
func TestBroadcast500StormCancelResume(t *testing.T) {
	e := newEnv(t)
	const users = 500
	blocked := 0
	for i := 1; i <= users; i++ {
		tg := int64(10_000 + i)
		lang := "es"
		if i%3 == 0 {
			lang = "en"
		}
		e.user(tg, lang)
		if i%50 == 0 {
			e.bot.blocked[tg] = true
			blocked++
		}
	}
	for _, at := range []int{40, 200, 330, 450} {
		e.bot.storms[at] = true
	}
	e.bot.retry = 2

	ctx, cancel := context.WithCancel(context.Background())
	e.bot.onMessage = func(n int) {
		if n == 150 {
			cancel()
		}
	}
	a := e.notifier()
	id, err := a.Broadcast(ctx, "admin:root", Segment{}, "¡Nuevos planes disponibles!")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	cut := len(e.bot.messages())
	if cut < 150 || cut >= users-blocked {
		t.Fatalf("%d messages when the context was cancelled", cut)
	}
	st, err := a.Status(id)
	if err != nil || st.State != StateRunning || st.InFlight != 0 {
		t.Fatalf("after cancel: %+v, %v", st, err)
	}

	e.bot.onMessage = nil
	b := e.notifier()
	stop := e.run(b)
	waitFor(t, "the broadcast to finish", func() bool {
		s, err := b.Status(id)
		return err == nil && s.State == StateDone
	})
	stop()

	msgs := e.bot.messages()
	per := map[int64]int{}
	for _, m := range msgs {
		per[m.Chat]++
	}
	for i := 1; i <= users; i++ {
		tg := int64(10_000 + i)
		want := 1
		if e.bot.blocked[tg] {
			want = 0
		}
		if per[tg] != want {
			t.Errorf("chat %d got %d messages, want %d", tg, per[tg], want)
		}
	}
	s, err := b.Status(id)
	if err != nil {
		t.Fatal(err)
	}
	if s.Sent != users-blocked || s.Blocked != blocked || s.Failed != 0 || s.InFlight != 0 {
		t.Errorf("status %+v", s)
	}
	marked, err := b.rc.allBlocked()
	if err != nil || len(marked) != blocked {
		t.Errorf("%d users marked blocked, want %d (%v)", len(marked), blocked, err)
	}
	lim := testLimits()
	checkRates(t, msgs, lim.PerWindow, lim.Window, lim.ChatGap)
	// Within a flood wait only requests already in flight when the first
	// 429 came back can arrive: at most PerWindow per storm.
	if e.bot.floods == 0 || e.bot.floods > len(e.bot.storms)*lim.PerWindow {
		t.Errorf("%d 429 responses for %d storms", e.bot.floods, len(e.bot.storms))
	}
	t.Logf("%d messages, %d requests, %d answered 429", len(msgs), e.bot.requests, e.bot.floods)
}

// At Telegram's real limits (30 a second), the arrivals keep them.
func TestBroadcastRealLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("takes two seconds")
	}
	e := newEnv(t)
	for i := 1; i <= 70; i++ {
		e.user(int64(20_000+i), "en")
	}
	n := e.notifier(func(o *Options) { o.Limits = DefaultLimits() })
	id, err := n.Broadcast(context.Background(), "api:k1", Segment{Language: "en"}, "hello")
	if err != nil {
		t.Fatal(err)
	}
	e.run(n)
	waitFor(t, "the broadcast", func() bool { s, _ := n.Status(id); return s != nil && s.State == StateDone })
	msgs := e.bot.messages()
	if len(msgs) != 70 {
		t.Fatalf("%d messages", len(msgs))
	}
	checkRates(t, msgs, 30, time.Second, time.Second)
	if span := msgs[len(msgs)-1].At.Sub(msgs[0].At); span < 2*time.Second-100*time.Millisecond {
		t.Errorf("70 messages in %v: faster than 30/s", span)
	}
}

// Segments pick by language, active key and plan; Cancel stops a broadcast
// for good; bad input is refused.
func TestBroadcastSegmentsAndCancel(t *testing.T) {
	e := newEnv(t)
	es := e.user(30_001, "es")
	en := e.user(30_002, "en")
	e.user(30_003, "en")
	e.key(en.ID, model.Limits{})
	_ = es
	n := e.notifier()
	ctx := context.Background()
	id1, err := n.Broadcast(ctx, "admin:root", Segment{Language: "en", ActiveKey: true}, "only active English")
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Set(e.clock.Now().Add(time.Second)) // ids order broadcasts by creation time
	id2, err := n.Broadcast(ctx, "admin:root", Segment{Language: "es"}, "solo español")
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Cancel(ctx, "admin:root", id2); err != nil {
		t.Fatal(err)
	}
	if err := n.Cancel(ctx, "admin:root", id2); !errors.Is(err, ErrBroadcastOver) {
		t.Fatalf("second cancel: %v", err)
	}
	e.run(n)
	waitFor(t, "the first broadcast", func() bool { s, _ := n.Status(id1); return s != nil && s.State == StateDone })
	time.Sleep(50 * time.Millisecond)
	got := e.bot.messages()
	if len(got) != 1 || got[0].Chat != 30_002 || got[0].Text != "only active English" {
		t.Fatalf("messages %+v", got)
	}
	s2, _ := n.Status(id2)
	if s2.State != StateCancelled || s2.Sent != 0 {
		t.Fatalf("cancelled broadcast %+v", s2)
	}
	list, err := n.Broadcasts(10)
	if err != nil || len(list) != 2 || list[0].ID != id2 {
		t.Fatalf("list %+v, %v", list, err)
	}
	for _, bad := range []struct {
		seg  Segment
		text string
	}{{Segment{}, ""}, {Segment{Language: "fr"}, "x"}, {Segment{PlanID: "01jx0000000000000000000000"}, "x"}, {Segment{}, string(make([]byte, 5000))}} {
		if _, err := n.Broadcast(ctx, "admin:root", bad.seg, bad.text); !errors.Is(err, model.ErrInvalid) && !errors.Is(err, model.ErrNotFound) {
			t.Errorf("Broadcast(%+v, %d chars) = %v", bad.seg, len(bad.text), err)
		}
	}
	if _, err := n.Status("nope"); !errors.Is(err, model.ErrInvalid) {
		t.Errorf("Status(bad id) = %v", err)
	}

	// A month later the receipts go; the counts stay.
	if err := n.pruneBroadcasts(ctx, e.clock.Now().Add(29*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if c := receiptCount(t, n, id1); c != 1 {
		t.Fatalf("%d receipts before the retention", c)
	}
	if err := n.pruneBroadcasts(ctx, e.clock.Now().Add(31*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if c := receiptCount(t, n, id1); c != 0 {
		t.Fatalf("%d receipts left after pruning", c)
	}
	if s, err := n.Status(id1); err != nil || s.Sent != 1 || s.State != StateDone {
		t.Fatalf("after pruning: %+v, %v", s, err)
	}
}

func receiptCount(t *testing.T, n *Notifier, id string) int {
	t.Helper()
	c := 0
	if err := n.st.ScanTelemetry(store.Receipts, recipientKey(id, ""), func(_, _ []byte) bool { c++; return true }); err != nil {
		t.Fatal(err)
	}
	return c
}

// A plan segment reaches only the users whose current plan it is.
func TestBroadcastPlanSegment(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	plan, err := e.svc.PutPlan(ctx, app.ActorCLI, app.PlanSpec{Name: "Pro", DurationDays: 30, MaxKeys: 2,
		Protocols: []model.KeyType{model.Outline}, PriceStars: 100, PriceUSDCents: 199})
	if err != nil {
		t.Fatal(err)
	}
	pro := e.user(40_001, "es")
	e.user(40_002, "es")
	if _, err := e.svc.GrantPlan(ctx, app.ActorCLI, pro.ID, plan.ID, 1, 0); err != nil {
		t.Fatal(err)
	}
	n := e.notifier()
	id, err := n.Broadcast(ctx, "admin:root", Segment{PlanID: plan.ID}, "gracias por ser Pro")
	if err != nil {
		t.Fatal(err)
	}
	e.run(n)
	waitFor(t, "the broadcast", func() bool { s, _ := n.Status(id); return s != nil && s.State == StateDone })
	if got := e.bot.messages(); len(got) != 1 || got[0].Chat != 40_001 {
		t.Fatalf("messages %+v", got)
	}
}
