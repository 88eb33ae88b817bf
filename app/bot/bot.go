package bot

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	tele "gopkg.in/telebot.v3"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/app/bot/i18n"
	"github.com/usipipo/usipipo/app/pay"
)

// Options configure a Bot. App, Pay, Token and SignKey are required.
type Options struct {
	App *app.Service
	Pay *pay.Service
	// Token and APIURL address the Bot API (--bot-token, --bot-api-url).
	Token      string
	APIURL     string
	HTTPClient *http.Client
	// SignKey signs callback data (at least 32 bytes, derived from the
	// node's data key so buttons stay valid across restarts).
	SignKey []byte
	// Admins are the Telegram ids from --admin-id: they get error details
	// and new tickets. Users granted the admin role can use admin commands.
	Admins []int64
	// Rate and Burst bound each user's updates (default 2/s, burst 8).
	Rate  float64
	Burst int
	// Broadcast, if set, queues a message for every user (lang "" for all
	// languages; activeOnly: only users with an active credential) and
	// returns its id; /broadcast is off without it.
	Broadcast func(ctx context.Context, actor, lang string, activeOnly bool, text string) (string, error)
	// Status, if set, adds the node's status (planes, uptime) to /status.
	Status func(ctx context.Context) string
	Logger *slog.Logger
	Now    func() time.Time
	Rand   io.Reader
}

// Bot is the Telegram bot. It is safe for concurrent use; the intake hands
// it one user's updates in order.
type Bot struct {
	app     *app.Service
	pay     *pay.Service
	tg      *api
	cat     *i18n.Catalogue
	signKey []byte
	admins  []int64
	limits  *limiter
	status  func(ctx context.Context) string
	bcast   func(ctx context.Context, actor, lang string, activeOnly bool, text string) (string, error)
	log     *slog.Logger
	now     func() time.Time
	rand    io.Reader

	commands  map[string]handler
	callbacks map[string]handler
	flows     map[string]handler

	username atomic.Pointer[string] // the bot's @username, for referral links (getMe)
}

// New returns a Bot. Start it with Run; install it with
// pay.Service.SetHandler and wrap the intake's handler with AfterPayments.
func New(o Options) (*Bot, error) {
	if o.App == nil || o.Pay == nil || o.Token == "" || len(o.SignKey) < 32 {
		return nil, fmt.Errorf("bot: the service layer, the payment service, a token and a 32-byte signing key are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.APIURL == "" {
		o.APIURL = pay.DefaultBotAPIURL
	}
	if o.HTTPClient == nil {
		o.HTTPClient = pay.DefaultHTTPClient()
	}
	if o.Rate <= 0 {
		o.Rate = 2
	}
	if o.Burst <= 0 {
		o.Burst = 8
	}
	cat, err := i18n.Load()
	if err != nil {
		return nil, err
	}
	b := &Bot{app: o.App, pay: o.Pay, tg: newAPI(o.APIURL, o.Token, o.HTTPClient), cat: cat, signKey: o.SignKey,
		admins: o.Admins, limits: newLimiter(o.Rate, o.Burst, o.Now), status: o.Status, bcast: o.Broadcast, log: o.Logger, now: o.Now, rand: o.Rand}
	b.routes()
	return b, nil
}

// HandleUpdate implements pay.Handler: it handles one non-payment update.
// It returns an error only for an update it could not read from storage
// (to be retried); everything a handler does wrong is reported to the user
// and the admins instead, so one bad update never blocks the rest.
func (b *Bot) HandleUpdate(ctx context.Context, u *pay.Update) error {
	var up tele.Update
	if err := json.Unmarshal(u.Raw, &up); err != nil {
		b.log.Warn("update_undecodable", "service", "bot", "details", err.Error())
		return nil
	}
	r := b.request(ctx, &up)
	if r == nil {
		return nil // not something the bot answers (a channel post, an edit…)
	}
	if !b.limits.allow(r.tgID) {
		if b.limits.warn(r.tgID) {
			b.tg.send(ctx, r.chat, r.t("error.slow_down"), nil)
		}
		return nil
	}
	b.dispatch(r)
	return nil
}

// Run fetches the bot's username and delivers what paid invoices bought
// until ctx ends.
func (b *Bot) Run(ctx context.Context) {
	var me struct {
		Username string `json:"username"`
	}
	if err := b.tg.call(ctx, "getMe", map[string]any{}, &me); err != nil {
		b.log.Warn("bot_getme_failed", "service", "bot", "details", err.Error())
	}
	b.username.Store(&me.Username)
	b.watch(ctx)
}

// botName is the bot's @username ("" until getMe answered).
func (b *Bot) botName() string {
	if p := b.username.Load(); p != nil {
		return *p
	}
	return ""
}
