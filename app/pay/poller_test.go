package pay

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/keyring"
)

// recorder is the bot's stand-in: it records the non-payment updates it gets.
type recorder struct {
	mu   sync.Mutex
	ids  []int64
	fail int // fail this many calls first
}

func (r *recorder) HandleUpdate(_ context.Context, u *Update) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail > 0 {
		r.fail--
		return errors.New("bot busy")
	}
	r.ids = append(r.ids, u.ID)
	return nil
}

func (r *recorder) seen() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int64(nil), r.ids...)
}

func (w *world) startPoller(lockDir string) (stop func()) {
	w.t.Helper()
	return w.startPollerWith(lockDir, false)
}

func (w *world) startPollerWith(lockDir string, persistFirst bool) (stop func()) {
	w.t.Helper()
	in := NewIntake(w.st, w.svc, 32, nil)
	if persistFirst {
		in.PersistFirst()
	}
	p, err := NewPoller(PollerOptions{API: w.svc.Bot(), Intake: in, Token: w.bot.token,
		LockDir: lockDir, Timeout: time.Second})
	if err != nil {
		w.t.Fatal(err)
	}
	c, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(c)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
			p.Close()
		})
	}
	w.t.Cleanup(stop)
	return stop
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPollerEndToEnd(t *testing.T) {
	w := newWorld(t)
	rec := &recorder{fail: 2}
	w.svc.SetHandler(rec)
	uid, tg := w.user("")
	inv, payload := w.starsInvoice(uid, Product{Kind: KindCredits, Qty: 100})
	stop := w.startPoller(t.TempDir())
	chat := w.bot.push(map[string]any{"message": map[string]any{"message_id": 1, "chat": map[string]any{"id": tg}, "from": map[string]any{"id": tg}, "text": "/start"}})
	w.bot.push(preCheckoutUpdate("pq", tg, inv.Amount, payload))
	waitFor(t, "pre-checkout answer", func() bool { _, seen := w.bot.answer("pq"); return seen })
	last := w.bot.push(paidUpdate(tg, inv.Amount, payload, "c1"))
	waitFor(t, "grant", func() bool { b, _ := w.st.Balance(uid); return b == 100 })
	// The bot's update failed twice and was retried until handled, once.
	waitFor(t, "bot update", func() bool { return len(rec.seen()) == 1 })
	if got := rec.seen(); got[0] != chat {
		t.Fatalf("handler saw %v", got)
	}
	waitFor(t, "offset confirmed", func() bool { return w.bot.confirmedOffset() == last+1 })
	stop()
	// Only one poller per token.
	p1, err := NewPoller(PollerOptions{API: w.svc.Bot(), Intake: NewIntake(w.st, w.svc, 1, nil), Token: w.bot.token})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewPoller(PollerOptions{API: w.svc.Bot(), Intake: NewIntake(w.st, w.svc, 1, nil), Token: w.bot.token}); !errors.Is(err, ErrPollerRunning) {
		t.Fatalf("second poller: %v", err)
	}
	p1.Close()
	if n, _ := pendingCount(w.st); n != 0 {
		t.Fatalf("%d updates left pending", n)
	}
}

func pendingCount(st *store.Store) (int, error) {
	n := 0
	err := st.ScanTelemetry(store.Updates, updPending, func(_, _ []byte) bool { n++; return true })
	return n, err
}

// The lock file keeps a second process (here: a second lock on the file,
// as another process would take) from polling the same token.
func TestPollerLockFile(t *testing.T) {
	dir := t.TempDir()
	w := newWorld(t)
	p, err := NewPoller(PollerOptions{API: w.svc.Bot(), Intake: NewIntake(w.st, w.svc, 1, nil), Token: w.bot.token, LockDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	files, _ := filepath.Glob(filepath.Join(dir, "tgpoll-*.lock"))
	if len(files) != 1 || strings.Contains(files[0], w.bot.token) {
		t.Fatalf("lock files %v", files)
	}
	fd, err := syscall.Open(files[0], syscall.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB); !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Fatalf("the token's lock is not held: %v", err)
	}
}

// Updates persisted but not processed (the handler kept failing, then the
// node stopped) are processed after a restart, and a redelivery of an update
// already processed is not handed over again.
func TestPollerResumesAfterRestart(t *testing.T) {
	w := newWorld(t)
	rec := &recorder{fail: 1 << 30}
	w.svc.SetHandler(rec)
	stop := w.startPoller("")
	a := w.bot.push(map[string]any{"message": map[string]any{"message_id": 1, "chat": map[string]any{"id": 1}, "text": "a"}})
	waitFor(t, "persisted", func() bool { n, _ := pendingCount(w.st); return n == 1 })
	waitFor(t, "confirmed", func() bool { return w.bot.confirmedOffset() == a+1 })
	stop()
	w.close()
	w.open()
	rec2 := &recorder{}
	w.svc.SetHandler(rec2)
	stop = w.startPoller("")
	waitFor(t, "resumed", func() bool { return len(rec2.seen()) == 1 })
	waitFor(t, "receipted", func() bool { n, _ := pendingCount(w.st); return n == 0 })
	// Telegram delivering it again (it never would below the offset) changes nothing.
	in := NewIntake(w.st, w.svc, 1, nil)
	ups, err := in.Persist([]json.RawMessage{mustJSON(map[string]any{"update_id": a, "message": map[string]any{"message_id": 1, "chat": map[string]any{"id": 1}}})}, 0)
	if err != nil || len(ups) != 0 {
		t.Fatalf("redelivery persisted %d: %v", len(ups), err)
	}
	stop()
	if got := rec2.seen(); len(got) != 1 || got[0] != a {
		t.Fatalf("handled %v", got)
	}
}

// Crash test: the child process polls, persists the successful_payment
// update, and is SIGKILLed before it grants. The restarted node grants it,
// once, and sends one receipt.
const (
	envChildDB  = "USIPIPO_PAY_CHILD_DB"
	envChildKey = "USIPIPO_PAY_CHILD_KEY"
	envChildAPI = "USIPIPO_PAY_CHILD_API"
	envChildTok = "USIPIPO_PAY_CHILD_TOKEN"
	envChildAt  = "USIPIPO_PAY_CHILD_KILL_AT" // die at this attempt to handle the payment
	// Hold the store's write lock from the start, so the update is handled
	// (and the child killed) before its persist can commit.
	envChildHold = "USIPIPO_PAY_CHILD_HOLD"
)

func TestPayChild(t *testing.T) {
	path := os.Getenv(envChildDB)
	if path == "" {
		t.Skip("helper process of TestCrashBetweenReceiveAndGrant")
	}
	kb, _ := hex.DecodeString(os.Getenv(envChildKey))
	var dk keyring.Key
	copy(dk[:], kb)
	st, err := store.Open(store.Options{Path: path})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(3)
	}
	svc, err := New(Options{Store: st, DataKey: dk, BotToken: os.Getenv(envChildTok), BotAPIURL: os.Getenv(envChildAPI)})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(3)
	}
	if os.Getenv(envChildHold) != "" {
		held := make(chan struct{})
		go st.UpdateTelemetry(store.Checkpoints, func(store.TelemetryTx) error {
			close(held)
			select {} // until the kill
		})
		<-held
	}
	killAt, _ := strconv.Atoi(os.Getenv(envChildAt))
	attempts := 0
	killer := HandlerFunc(func(ctx context.Context, u *Update) error {
		if u.Message != nil && u.Message.SuccessfulPayment != nil {
			if attempts++; attempts < killAt {
				return errors.New("not yet") // stays pending; the poller goes on
			}
			// Received and persisted, not yet granted: die.
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
		return svc.HandleUpdate(ctx, u)
	})
	p, err := NewPoller(PollerOptions{API: svc.Bot(), Intake: NewIntake(st, killer, 4, nil), Token: os.Getenv(envChildTok), Timeout: time.Second})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(3)
	}
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p.Run(c)
	fmt.Println("ERR not killed")
	os.Exit(4)
}

func TestCrashBetweenReceiveAndGrant(t *testing.T) {
	// Killed at the first attempt: before the next getUpdates confirmed the
	// update. Killed at the third: after Telegram was told it arrived.
	// Killed at the first while the update's persist cannot commit (the
	// intake handles an update while it is fsynced): nothing on disk, and
	// Telegram was not told, so it delivers the update again.
	for _, c := range []struct {
		killAt int
		hold   bool
	}{{1, false}, {3, false}, {1, true}} {
		name := fmt.Sprint(c.killAt)
		if c.hold {
			name += "-before-persist"
		}
		t.Run(name, func(t *testing.T) { crashBetweenReceiveAndGrant(t, c.killAt, c.hold) })
	}
}

func crashBetweenReceiveAndGrant(t *testing.T, killAt int, hold bool) {
	w := newWorld(t)
	uid, tg := w.user("")
	inv, payload := w.starsInvoice(uid, Product{Kind: KindPlan, RefID: w.plan.ID, Months: 1})
	w.close()
	last := w.bot.push(paidUpdate(tg, inv.Amount, payload, "crash-charge"))

	cmd := exec.Command(os.Args[0], "-test.run=^TestPayChild$", "-test.v")
	cmd.Env = append(os.Environ(), envChildDB+"="+w.path, envChildKey+"="+hex.EncodeToString(w.dk[:]),
		envChildAPI+"="+w.bot.url, envChildTok+"="+w.bot.token, envChildAt+"="+fmt.Sprint(killAt))
	if hold {
		cmd.Env = append(cmd.Env, envChildHold+"=1")
	}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die by SIGKILL: %v\n%s", err, out)
	}
	// At the third attempt the poller has long told Telegram it has the
	// update (at the first it may have, or not).
	if killAt > 1 && w.bot.confirmedOffset() != last+1 {
		t.Fatalf("kill at %d: offset %d", killAt, w.bot.confirmedOffset())
	}
	w.open()
	if len(w.subs(uid)) != 0 {
		t.Fatal("granted before the crash")
	}
	// Telegram is told of an update (by the offset) only once it is on disk.
	n, _ := pendingCount(w.st)
	confirmed := w.bot.confirmedOffset() == last+1
	switch {
	case hold && (n != 0 || confirmed):
		t.Fatalf("persist held: %d pending, confirmed %v", n, confirmed)
	case !hold && killAt > 1 && n != 1:
		t.Fatalf("%d updates pending after the crash", n)
	case n != 1 && confirmed:
		t.Fatalf("confirmed to Telegram with %d updates pending", n)
	}
	stop := w.startPoller("")
	waitFor(t, "grant after restart", func() bool { return len(w.subs(uid)) == 1 })
	waitFor(t, "receipt", func() bool { return len(w.bot.sent(tg)) == 1 })
	waitFor(t, "pending cleared", func() bool { n, _ := pendingCount(w.st); return n == 0 })
	waitFor(t, "offset confirmed", func() bool { return w.bot.confirmedOffset() == last+1 })
	stop()
	// A restart again changes nothing.
	w.close()
	w.open()
	stop = w.startPoller("")
	time.Sleep(100 * time.Millisecond)
	stop()
	if len(w.subs(uid)) != 1 || len(w.bot.sent(tg)) != 1 {
		t.Fatalf("subs %d receipts %d", len(w.subs(uid)), len(w.bot.sent(tg)))
	}
}
