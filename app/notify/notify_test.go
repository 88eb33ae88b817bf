package notify

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// A key three days from expiry gets exactly one reminder, even when the
// notifier is stopped and a new one starts, then the one-day reminder.
func TestExpiryReminderOnceAcrossRestart(t *testing.T) {
	e := newEnv(t)
	u := e.user(1001, "es")
	exp := e.clock.Now().Add(5 * 24 * time.Hour)
	e.key(u.ID, model.Limits{ExpiresAt: exp})
	e.key(u.ID, model.Limits{ExpiresAt: e.clock.Now().Add(10 * 24 * time.Hour)}) // not due
	e.clock.Set(exp.Add(-60 * time.Hour))
	e.key(u.ID, model.Limits{ExpiresAt: exp}) // issued inside the 3-day window: no 3-day reminder

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.notifier().Run(ctx) }()
	stopped := false
	t.Cleanup(func() {
		if !stopped { // the test failed before stopping it
			cancel()
			<-done
		}
	})
	waitFor(t, "the 3-day reminder", func() bool { return len(e.bot.to(1001)) == 1 })
	time.Sleep(100 * time.Millisecond) // several more scans
	cancel()
	stopped = true
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	sc := newScanner(e.notifier()) // the restarted notifier
	scanOnce(t, sc)
	scanOnce(t, sc)
	got := e.bot.to(1001)
	if len(got) != 1 || !strings.Contains(got[0], "3 días") || !strings.Contains(got[0], "casa") {
		t.Fatalf("after restart: %q", got)
	}

	e.clock.Set(exp.Add(-20 * time.Hour))
	scanOnce(t, sc)
	scanOnce(t, sc)
	// Both keys get the 1-day reminder; the one issued inside the 3-day
	// window got no 3-day one.
	got = e.bot.to(1001)
	if len(got) != 3 || !strings.Contains(got[1], "mañana") || !strings.Contains(got[2], "mañana") {
		t.Fatalf("1-day reminders: %q", got)
	}
}

// A transient Bot API failure leaves the notification for the next scan;
// a pending receipt (a crash during the request) is never resent.
func TestRetryAfterFailureNotAfterCrash(t *testing.T) {
	e := newEnv(t)
	u := e.user(1002, "en")
	exp := e.clock.Now().Add(5 * 24 * time.Hour)
	e.key(u.ID, model.Limits{ExpiresAt: exp})
	v := e.user(1003, "en")
	kv := e.key(v.ID, model.Limits{ExpiresAt: exp})
	e.clock.Set(exp.Add(-20 * time.Hour))
	n := e.notifier()
	// v's reminder was in flight when the node crashed.
	crashed := note{userID: v.ID, kind: kindExpiry1d, subject: kv.ID, threshold: unix(kv.Limits.ExpiresAt)}
	if err := n.rc.put(crashed.key("tg"), rcPending, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	e.bot.mu.Lock()
	e.bot.fail5xx = transientTries
	e.bot.mu.Unlock()
	sc := newScanner(n)
	scanOnce(t, sc)
	if got := e.bot.to(1002); len(got) != 0 {
		t.Fatalf("sent despite 502s: %q", got)
	}
	scanOnce(t, sc)
	scanOnce(t, sc)
	if got := e.bot.to(1002); len(got) != 1 || !strings.Contains(got[0], "tomorrow") {
		t.Fatalf("after recovery: %q", got)
	}
	if got := e.bot.to(1003); len(got) != 0 {
		t.Fatalf("a pending receipt was resent: %q", got)
	}
}

// Data caps: 80% then 100% once each, by Telegram and by e-mail (SMTP with
// STARTTLS); a cap that cuts the key off is told as the 100% notice, not as
// a suspension; a throttled key is told by the caps pass.
func TestCapNotifications(t *testing.T) {
	e := newEnv(t)
	smtp := newFakeSMTP(t)
	u := e.user(2001, "en")
	e.setEmail(u.ID, "ana@example.org")
	cut := e.key(u.ID, model.Limits{DataCap: 10_000})
	thr := e.key(u.ID, model.Limits{DataCap: 10_000, ThrottleBps: 1000})
	n := e.notifier(func(o *Options) { o.Mail = e.mailOptions(smtp) })
	sc := newScanner(n)
	scanOnce(t, sc) // records the active set

	e.use(cut.ID, 8_500, 0)
	scanOnce(t, sc)
	scanOnce(t, sc)
	if got := e.bot.to(2001); len(got) != 1 || !strings.Contains(got[0], "85%") {
		t.Fatalf("80%% notice: %q", got)
	}
	e.use(cut.ID, 2_000, 1) // over the cap: the usage batch suspends it
	e.use(thr.ID, 10_000, 2)
	if k, _ := e.st.Key(cut.ID); k.Status != model.KeySuspended || k.Reason != store.ReasonDataCap {
		t.Fatalf("cut key is %s (%s)", k.Status, k.Reason)
	}
	scanOnce(t, sc)
	scanOnce(t, sc)
	got := e.bot.to(2001)
	if len(got) != 3 {
		t.Fatalf("want 80%% + two 100%% notices, got %q", got)
	}
	for _, s := range got[1:] {
		if !strings.Contains(s, "used up its data") {
			t.Errorf("not a 100%% notice: %q", s)
		}
	}
	mails := smtp.messages()
	if len(mails) != 3 {
		t.Fatalf("want 3 e-mails, got %d", len(mails))
	}
	for _, m := range mails {
		if !m.TLS || m.AuthUser != "notify" || m.To != "ana@example.org" || m.From != "node@usipipo.test" {
			t.Errorf("mail %+v", m)
		}
	}
	if !strings.Contains(mails[0].Data, "85%") || !strings.Contains(mails[0].Data, "Subject: uSipipo: notice") {
		t.Errorf("first mail:\n%s", mails[0].Data)
	}
}

// An admin suspension and the restoration are told once each.
func TestSuspendedAndRestored(t *testing.T) {
	e := newEnv(t)
	u := e.user(3001, "es")
	k := e.key(u.ID, model.Limits{})
	sc := newScanner(e.notifier())
	scanOnce(t, sc)
	ctx := context.Background()
	if err := e.svc.SetKeyStatus(ctx, app.ActorCLI, k.ID, model.KeySuspended, "abuse"); err != nil {
		t.Fatal(err)
	}
	scanOnce(t, sc)
	sc = newScanner(e.notifier()) // a restart between the two
	scanOnce(t, sc)
	if err := e.svc.SetKeyStatus(ctx, app.ActorCLI, k.ID, model.KeyActive, ""); err != nil {
		t.Fatal(err)
	}
	scanOnce(t, sc)
	scanOnce(t, sc)
	got := e.bot.to(3001)
	if len(got) != 2 || !strings.Contains(got[0], "suspendida") || !strings.Contains(got[1], "vuelve a estar activa") {
		t.Fatalf("got %q", got)
	}
}

// A user who blocked the bot is marked, and not written to again.
func TestBlockedUserMarked(t *testing.T) {
	e := newEnv(t)
	u := e.user(4001, "es")
	e.bot.blocked[4001] = true
	t0 := e.clock.Now()
	e.key(u.ID, model.Limits{ExpiresAt: t0.Add(5 * 24 * time.Hour)})
	e.key(u.ID, model.Limits{ExpiresAt: t0.Add(5*24*time.Hour + time.Hour)})
	e.clock.Set(t0.Add(3 * 24 * time.Hour))
	n := e.notifier()
	scanOnce(t, newScanner(n))
	if b, err := n.BotBlocked(u.ID); err != nil || !b {
		t.Fatalf("blocked = %v, %v", b, err)
	}
	e.bot.mu.Lock()
	before := e.bot.requests
	e.bot.mu.Unlock()
	e.clock.Set(t0.Add(4*24*time.Hour + 2*time.Hour)) // both keys' 1-day reminders are due
	scanOnce(t, newScanner(n))
	e.bot.mu.Lock()
	after := e.bot.requests
	e.bot.mu.Unlock()
	if after != before {
		t.Fatalf("%d more requests to a blocked user", after-before)
	}
	if err := n.Unblock(u.ID); err != nil {
		t.Fatal(err)
	}
	if b, _ := n.BotBlocked(u.ID); b {
		t.Fatal("still blocked after Unblock")
	}
}

func unix(t time.Time) string { return note{}.subject + itoa(t.Unix()) }

// MTProto secrets get the same notices: expiry (they have no expiry index,
// so the caps pass reads them), the data cap, and suspension.
func TestProxyNotifications(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u := e.user(5001, "en")
	exp := e.clock.Now().Add(5 * 24 * time.Hour)
	p, err := e.svc.CreateProxy(ctx, app.ActorCLI, app.ProxyRequest{UserID: u.ID, Admin: true,
		Limits: model.Limits{ExpiresAt: exp, DataCap: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	sc := newScanner(e.notifier())
	scanOnce(t, sc)
	e.clock.Set(exp.Add(-70 * time.Hour))
	e.use(p.ID, 900, 0)
	scanOnce(t, sc)
	if err := e.svc.SetProxyStatus(ctx, app.ActorCLI, p.ID, model.KeySuspended, "abuse"); err != nil {
		t.Fatal(err)
	}
	scanOnce(t, sc)
	scanOnce(t, sc)
	got := e.bot.to(5001)
	want := []string{"expires in 3 days", "has used 90%", "was suspended (administrator's decision)"}
	if len(got) != len(want) {
		t.Fatalf("got %q", got)
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || strings.Contains(g, "MTProto") && strings.Contains(g, w)
		}
		if !found {
			t.Errorf("no %q in %q", w, got)
		}
	}
}
