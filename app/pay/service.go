package pay

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/keyring"
	"github.com/usipipo/usipipo/store/model"
)

// Defaults of the public providers' base URLs.
const (
	DefaultBotAPIURL = "https://api.telegram.org"
	DefaultQvaPayURL = "https://qvapay.com"
)

// Options configure a Service. Store and DataKey are required.
type Options struct {
	Store   *store.Store
	DataKey keyring.Key // derives the payload key; seals QvaPay credentials

	BotToken  string // --bot-token; empty: Stars and the poller are off
	BotAPIURL string // --bot-api-url; default DefaultBotAPIURL
	QvaPayURL string // --qvapay-url; default DefaultQvaPayURL

	// HTTPClient calls the Bot API and QvaPay (public hosts, so not the
	// egress dialer). Default: a client with 10 s dial and response timeouts.
	HTTPClient *http.Client
	// AdminChats are the Telegram chats that get payment notifications.
	AdminChats []int64
	// Handler receives every update that is not a payment's; SetHandler can
	// install it later.
	Handler Handler

	Logger *slog.Logger
	Now    func() time.Time
	Rand   io.Reader
}

// Service is the payment service. It is safe for concurrent use.
type Service struct {
	st         *store.Store
	dataKey    keyring.Key
	payloadKey []byte
	bot        *BotAPI // nil: no bot token
	qva        *qvaClient
	admins     []int64
	handler    atomic.Pointer[handlerBox]
	log        *slog.Logger
	now        func() time.Time
	rand       io.Reader
	stripes    [64]sync.Mutex // one settlement of a payment at a time, per process
	marks      *marks
	rev        revenueCache // for /metrics (revenue.go)
	fails      failures     // for /metrics (failmetrics.go)
}

type handlerBox struct{ h Handler }

// New returns a Service.
func New(o Options) (*Service, error) {
	if o.Store == nil {
		return nil, fmt.Errorf("pay: a store is required: %w", model.ErrInvalid)
	}
	if o.DataKey.IsZero() {
		return nil, fmt.Errorf("pay: a data key is required: %w", model.ErrInvalid)
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
	if o.HTTPClient == nil {
		o.HTTPClient = DefaultHTTPClient()
	}
	if o.BotAPIURL == "" {
		o.BotAPIURL = DefaultBotAPIURL
	}
	if o.QvaPayURL == "" {
		o.QvaPayURL = DefaultQvaPayURL
	}
	s := &Service{st: o.Store, dataKey: o.DataKey, payloadKey: deriveKey(o.DataKey, "usipipo/pay/payload/v1"),
		admins: o.AdminChats, log: o.Logger, now: o.Now, rand: o.Rand, marks: newMarks(o.Store)}
	if o.BotToken != "" {
		s.bot = NewBotAPI(o.BotAPIURL, o.BotToken, o.HTTPClient)
		s.bot.onError = func(ctx context.Context, method string, err error) {
			if starsPaymentMethods[method] {
				s.noteCallError(ctx, Stars, err)
			}
		}
	}
	s.qva = &qvaClient{base: strings.TrimRight(o.QvaPayURL, "/"), hc: o.HTTPClient,
		onError: func(ctx context.Context, err error) {
			// 404 is QvaPay's answer "no such transaction", which the
			// caller audits as a rejection: not a failed call.
			if ae := (*APIError)(nil); !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
				s.noteCallError(ctx, QvaPay, err)
			}
		}}
	s.SetHandler(o.Handler)
	return s, nil
}

// DefaultHTTPClient is a client for public provider APIs: bounded dial,
// TLS, header and total times (a long poll adds its own timeout on top).
func DefaultHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSHandshakeTimeout = 10 * time.Second
	tr.ResponseHeaderTimeout = 75 * time.Second // getUpdates holds up to its timeout
	tr.MaxIdleConnsPerHost = 16
	return &http.Client{Transport: tr, Timeout: 90 * time.Second}
}

// Close writes the receipt markers still queued. The store must still be
// open; the service is not used after.
func (s *Service) Close() error { return s.marks.flush() }

// SetHandler installs the handler of non-payment updates (the bot).
func (s *Service) SetHandler(h Handler) { s.handler.Store(&handlerBox{h}) }

// Bot is the raw Bot API client, nil when no token is configured.
func (s *Service) Bot() *BotAPI { return s.bot }

func deriveKey(k keyring.Key, label string) []byte {
	m := hmac.New(sha256.New, k[:])
	m.Write([]byte(label))
	return m.Sum(nil)
}

// Actor names who asks; it goes into the audit trail.
type Actor string

// Actors of the payment flows.
const (
	ActorStars  Actor = "pay:stars"
	ActorQvaPay Actor = "pay:qvapay"
	ActorSystem Actor = "system"
)

func (s *Service) meta(a Actor) store.Meta { return store.Meta{At: s.now().UTC(), Actor: string(a)} }

func (s *Service) newID(at time.Time) (string, error) { return model.NewID(at, s.rand) }

// do applies one command and logs it with the seed's fields.
func (s *Service) do(ctx context.Context, m store.Meta, cmd store.Command, userID string) error {
	start := time.Now()
	err := s.st.Do(ctx, m, cmd)
	lvl := slog.LevelInfo
	if err != nil {
		lvl = slog.LevelWarn
	}
	attrs := []slog.Attr{slog.String("service", "pay"), slog.String("user_id", userID), slog.String("action", cmd.Kind()),
		slog.String("actor", m.Actor), slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000)}
	if err != nil {
		attrs = append(attrs, slog.String("details", err.Error()))
	}
	s.log.LogAttrs(ctx, lvl, cmd.Kind(), attrs...)
	return err
}

// reject audits a refused payment event; nothing else changes.
func (s *Service) reject(ctx context.Context, a Actor, r store.RejectPayment) {
	s.noteReject(r.Provider, r.Event)
	if err := s.do(ctx, s.meta(a), r, r.UserID); err != nil {
		s.log.Error("payment_reject_not_audited", "service", "pay", "details", err.Error())
	}
}

// lock serialises the settlement of one payment inside this process, so a
// receipt is sent by the one caller whose settle won.
func (s *Service) lock(paymentID string) func() {
	h := uint32(2166136261)
	for i := 0; i < len(paymentID); i++ {
		h = (h ^ uint32(paymentID[i])) * 16777619
	}
	mu := &s.stripes[h%uint32(len(s.stripes))]
	mu.Lock()
	return mu.Unlock
}
