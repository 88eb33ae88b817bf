package notify

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/app/pay"
	"github.com/usipipo/usipipo/store"
)

// Options configure a Notifier. Store and Service are required; without
// BotToken nothing goes by Telegram (and Broadcast refuses), without Mail
// nothing by e-mail.
type Options struct {
	Store   *store.Store
	Service *app.Service // opens users' e-mail addresses (sealed personal data)

	BotToken   string       // --bot-token
	BotAPIURL  string       // --bot-api-url; default pay.DefaultBotAPIURL
	HTTPClient *http.Client // default pay.DefaultHTTPClient()
	Limits     Limits       // default DefaultLimits()

	AdminChats  []int64  // Telegram chats of the admins (--admin-id)
	AdminEmails []string // e-mail addresses of the admins (--admin-email)
	Mail        *MailOptions

	// PaymentAlertsTelegram sends the admins' payment alerts by Telegram
	// too. The node leaves it off: app/pay already tells the admins' chats
	// about each payment as it settles it, so here they go by e-mail only.
	PaymentAlertsTelegram bool

	// BackupDir holds the scheduled backups (DATA/backups); the newest is
	// sent to the admins' chats as a document every BackupEvery (default
	// 24 h). Empty: off.
	BackupDir   string
	BackupEvery time.Duration

	Interval    time.Duration // between scans; default 1 minute
	SendTimeout time.Duration // one Bot API request; default 30 s
	Workers     int           // concurrent sends of a broadcast; default Limits.PerWindow

	Logger  *slog.Logger
	Metrics *metrics.Set
	Now     func() time.Time
	Rand    io.Reader
}

// Notifier sends the node's notifications and runs its broadcasts. Its
// methods are safe for concurrent use; Run does the work.
type Notifier struct {
	o    Options
	st   *store.Store
	svc  *app.Service
	tg   *telegram // nil without a bot token
	mail *mailer   // nil without e-mail settings
	lim  *limiter
	rc   receipts
	cat  catalogue
	log  *slog.Logger
	now  func() time.Time
	m    counters

	alerts chan alert    // errors waiting to go to the admins
	kick   chan struct{} // a broadcast was queued or cancelled

	jobMu   sync.Mutex                    // guards writes of broadcast records, and running
	running map[string]context.CancelFunc // broadcasts being sent by this process
}

type counters struct {
	sent, blocked, failed, throttled *metrics.Counter
}

// New checks o and returns a Notifier; Run starts it.
func New(o Options) (*Notifier, error) {
	if o.Store == nil || o.Service == nil {
		return nil, errors.New("notify: Store and Service are required")
	}
	if o.BotAPIURL == "" {
		o.BotAPIURL = pay.DefaultBotAPIURL
	}
	if o.HTTPClient == nil {
		o.HTTPClient = pay.DefaultHTTPClient()
	}
	o.Limits = o.Limits.withDefaults()
	if o.Interval <= 0 {
		o.Interval = time.Minute
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = 30 * time.Second
	}
	if o.Workers <= 0 {
		o.Workers = o.Limits.PerWindow
	}
	if o.BackupEvery <= 0 {
		o.BackupEvery = 24 * time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = metrics.NewSet()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	cat, err := loadCatalogue()
	if err != nil {
		return nil, err
	}
	n := &Notifier{o: o, st: o.Store, svc: o.Service, lim: newLimiter(o.Limits), rc: newReceipts(o.Store), cat: cat,
		log: o.Logger, now: o.Now, alerts: make(chan alert, 64), kick: make(chan struct{}, 1),
		running: map[string]context.CancelFunc{}}
	if o.BotToken != "" {
		n.tg = newTelegram(o.BotAPIURL, o.BotToken, o.HTTPClient)
	}
	if o.Mail != nil {
		if n.mail, err = newMailer(*o.Mail); err != nil {
			return nil, err
		}
	}
	n.m = counters{
		sent:      o.Metrics.GetOrCreateCounter(`usipipo_notify_messages_total{result="sent"}`),
		blocked:   o.Metrics.GetOrCreateCounter(`usipipo_notify_messages_total{result="blocked"}`),
		failed:    o.Metrics.GetOrCreateCounter(`usipipo_notify_messages_total{result="failed"}`),
		throttled: o.Metrics.GetOrCreateCounter(`usipipo_notify_throttled_total`),
	}
	return n, nil
}

// Run scans for due notifications every Interval (at once first) and sends
// the queued broadcasts, until ctx ends. Sends in flight complete; what was
// not sent is picked up by the next Run.
func (n *Notifier) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { n.runBroadcasts(ctx) })
	defer wg.Wait()
	sc := newScanner(n)
	t := time.NewTicker(n.o.Interval)
	defer t.Stop()
	scan := func() {
		if err := sc.scan(ctx); err != nil && ctx.Err() == nil {
			n.log.Error("notify_scan_failed", "error", err.Error())
		}
	}
	scan()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			scan()
		case a := <-n.alerts:
			n.sendAlert(ctx, a)
		}
	}
}

// Unblock clears a user's bot-blocked mark; the bot calls it when the user
// writes to it again, so notifications and broadcasts reach them again.
func (n *Notifier) Unblock(userID string) error {
	return n.rc.setBlocked(userID, n.now(), false)
}

// BotBlocked reports whether a user's chat answered that they blocked the bot.
func (n *Notifier) BotBlocked(userID string) (bool, error) { return n.rc.blocked(userID) }

func (n *Notifier) count(out outcome) {
	switch out {
	case outSent:
		n.m.sent.Inc()
	case outBlocked:
		n.m.blocked.Inc()
	case outFailed:
		n.m.failed.Inc()
	}
}

// errNotSent says a notification is left for the next scan.
var errNotSent = errors.New("not delivered yet")

func notSent(what string) error { return fmt.Errorf("%s: %w", what, errNotSent) }
