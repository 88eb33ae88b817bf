package notify

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/app/apptest"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/keyring"
	"github.com/usipipo/usipipo/store/model"
)

// env is a real store and service layer in a temp dir, with a fake Bot API.
// Its clock is the notifier's business time (expiry, report days); the
// limiter always runs on real time.
type env struct {
	t     testing.TB
	st    *store.Store
	svc   *app.Service
	dk    keyring.Key
	clock *apptest.Clock
	bot   *fakeBot
	dir   string
}

// testLimits are Telegram's limits scaled down tenfold in time, so tests
// exercise the same rules quickly.
func testLimits() Limits {
	return Limits{PerWindow: 30, Window: 100 * time.Millisecond, ChatGap: 100 * time.Millisecond, RetryUnit: 100 * time.Millisecond}
}

func newEnv(t testing.TB) *env {
	t.Helper()
	// No public endpoints, as before: nothing here renders a client config.
	n := apptest.New(t, func(o *app.Options) { o.Ends = app.Endpoints{} })
	n.Clock.Set(time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC))
	return &env{t: t, st: n.Store, svc: n.Svc, dk: n.DataKey, clock: n.Clock, bot: newFakeBot(t, testLimits().RetryUnit), dir: n.Dir}
}

// notifier builds a Notifier on the env; opts may adjust the options.
func (e *env) notifier(opts ...func(*Options)) *Notifier {
	e.t.Helper()
	o := Options{Store: e.st, Service: e.svc, BotToken: e.bot.token, BotAPIURL: e.bot.url, Limits: testLimits(),
		Interval: 20 * time.Millisecond, SendTimeout: 5 * time.Second, Now: e.clock.Now}
	for _, f := range opts {
		f(&o)
	}
	n, err := New(o)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) user(tg int64, lang string) *app.UserView {
	e.t.Helper()
	u, err := e.svc.RegisterUser(context.Background(), app.ActorCLI, app.NewUser{TelegramID: tg, Language: lang})
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// key issues an operator-granted Outline key with the given limits.
func (e *env) key(userID string, l model.Limits) *model.Key {
	e.t.Helper()
	k, err := e.svc.CreateKey(context.Background(), app.ActorCLI, app.KeyRequest{UserID: userID, Type: model.Outline,
		Name: "casa", Admin: true, Limits: l})
	if err != nil {
		e.t.Fatal(err)
	}
	return k
}

// use records traffic for a credential as the reconcile loop would.
func (e *env) use(id string, bytes uint64, seq int) {
	e.t.Helper()
	start := e.clock.Now().Add(time.Duration(seq) * time.Minute)
	err := e.st.Do(context.Background(), store.Meta{At: e.clock.Now(), Actor: "system"}, store.UsageBatch{Node: "n1",
		Start: start, End: start.Add(time.Minute), Deltas: []store.UsageDelta{{ID: id, Rx: bytes}}})
	if err != nil {
		e.t.Fatal(err)
	}
}

// setEmail puts an e-mail address into a user's sealed personal data, as
// the service layer seals it.
func (e *env) setEmail(userID, addr string) {
	e.t.Helper()
	wrapped, err := e.st.UserKey(userID)
	if err != nil {
		e.t.Fatal(err)
	}
	uk, err := keyring.Unwrap(e.dk, wrapped, "user:"+userID)
	if err != nil {
		e.t.Fatal(err)
	}
	b, _ := json.Marshal(model.Personal{Email: addr})
	sealed, err := keyring.Seal(uk, rand.Reader, "user.personal", userID, b)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.st.Do(context.Background(), store.Meta{At: e.clock.Now(), Actor: "test"}, store.UpdateUser{UserID: userID, Personal: sealed}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) mailOptions(s *fakeSMTP) *MailOptions {
	host, port, _ := net.SplitHostPort(s.addr)
	p, _ := strconv.Atoi(port)
	return &MailOptions{Host: host, Port: p, User: s.user, Password: s.password, From: "uSipipo <node@usipipo.test>",
		TLS: tlsTrusting(s), Timeout: 5 * time.Second}
}

// scanOnce runs one scan synchronously.
func scanOnce(t testing.TB, sc *scanner) {
	t.Helper()
	if err := sc.scan(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or the test times out.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// run starts n.Run until the test ends (or stop is called), and waits for
// it to return before the store closes.
func (e *env) run(n *Notifier) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := n.Run(ctx); err != nil {
			e.t.Errorf("Run: %v", err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	e.t.Cleanup(stop)
	return stop
}
