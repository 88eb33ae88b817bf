// Package shadowmere keeps a list of working free Shadowsocks proxies
// fetched from a Shadowmere instance (GET /api/sub/ and the paginated GET
// /api/proxies/?is_active=true), re-checks each one itself and serves the
// best by latency, optionally by country.
//
// A List does nothing until Run: Run fetches at once and then every Every,
// re-checks every fetched entry every RecheckEvery, and returns when its
// context ends. Best reads the last checked set without waiting for a check.
//
// The check (check.go) performs a real Shadowsocks AEAD handshake through
// the listed proxy with our own SIP004 code (vpn/outline): it asks the
// proxy to reach Target, sends Request there and waits for one byte of
// reply. Entries whose method we do not implement fall back to a TCP
// connect. Every dial goes through the injected egress dialer, so a hostile
// entry pointing at a private address is refused, never probed.
package shadowmere

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults applied by New to zero Options fields.
const (
	DefaultEvery        = time.Hour
	DefaultRecheckEvery = 10 * time.Minute
	DefaultCheckTimeout = 5 * time.Second
	DefaultMaxProxies   = 2000
	DefaultMaxPages     = 50
	DefaultParallel     = 32
	// DefaultTarget answers a plain HTTP request from anywhere with a tiny
	// reply: Google's connectivity check, which Android itself uses.
	DefaultTarget = "connectivitycheck.gstatic.com:80"
)

// How a proxy was found alive.
const (
	CheckShadowsocks = "shadowsocks" // an AEAD handshake and a reply through it
	CheckTCP         = "tcp"         // only a TCP connect (method we do not speak)
)

// ErrNoReply is a proxy that accepted the handshake but relayed no reply
// from the target: a wrong password, a dead relay, or a blocked target.
var ErrNoReply = errors.New("shadowmere: no reply through the proxy")

// Proxy is one Shadowsocks server.
type Proxy struct {
	Server   string        `json:"server"`
	Port     int           `json:"server_port"`
	Password string        `json:"password"`
	Method   string        `json:"method"`
	Remarks  string        `json:"remarks"`
	Country  string        `json:"country,omitempty"` // ISO code, from /api/proxies/
	Latency  time.Duration `json:"latency"`           // dial to first reply byte (or to connect, for CheckTCP)
	Checked  time.Time     `json:"checked"`
	Check    string        `json:"check,omitempty"` // CheckShadowsocks or CheckTCP
}

// Addr is host:port.
func (p Proxy) Addr() string { return net.JoinHostPort(p.Server, strconv.Itoa(p.Port)) }

// Options configure a List. URL, HTTP and Dial are required.
type Options struct {
	URL  string                                                            // --shadowmere-url
	HTTP *http.Client                                                      // (*egress.Dialer).HTTPClient
	Dial func(ctx context.Context, network, addr string) (net.Conn, error) // (*egress.Dialer).DialContext

	Every        time.Duration // fetch period; 0: DefaultEvery
	RecheckEvery time.Duration // re-check period of the fetched entries; 0: DefaultRecheckEvery
	CheckTimeout time.Duration // per proxy; 0: DefaultCheckTimeout
	MaxProxies   int           // entries kept from one fetch; 0: DefaultMaxProxies
	MaxPages     int           // pages of /api/proxies/ followed; 0: DefaultMaxPages
	Parallel     int           // checks at once; 0: DefaultParallel
	// Target (host:port) is what each proxy is asked to reach, and Request
	// what is sent there; any reply byte proves the proxy relays. Zero: an
	// HTTP HEAD of DefaultTarget.
	Target  string
	Request []byte
	Rand    io.Reader    // salts; nil: crypto/rand
	Log     *slog.Logger // nil: discard
}

// List is the in-memory list of checked proxies. It is safe for concurrent use.
type List struct {
	opts Options

	mu      sync.Mutex // guards the fields below
	fetched []Proxy    // the last fetch, checked or not
	live    []Proxy    // the live ones of the last check, by latency
	status  Status
}

// Status describes the list's last fetch and check.
type Status struct {
	Fetched   int       `json:"fetched"`
	Live      int       `json:"live"`
	LastFetch time.Time `json:"last_fetch,omitzero"`
	LastCheck time.Time `json:"last_check,omitzero"`
	LastError string    `json:"last_error,omitempty"`
}

// New validates opts; nothing runs until Run.
func New(opts Options) (*List, error) {
	if opts.URL == "" || opts.HTTP == nil || opts.Dial == nil {
		return nil, errors.New("shadowmere: URL, HTTP and Dial are required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	defInt := func(d *int, v int) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.Every, DefaultEvery)
	def(&opts.RecheckEvery, DefaultRecheckEvery)
	def(&opts.CheckTimeout, DefaultCheckTimeout)
	defInt(&opts.MaxProxies, DefaultMaxProxies)
	defInt(&opts.MaxPages, DefaultMaxPages)
	defInt(&opts.Parallel, DefaultParallel)
	if opts.Target == "" {
		opts.Target = DefaultTarget
	}
	host, _, err := net.SplitHostPort(opts.Target)
	if err != nil {
		return nil, fmt.Errorf("shadowmere: target %q: %w", opts.Target, err)
	}
	if opts.Request == nil {
		opts.Request = []byte("HEAD /generate_204 HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n")
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if _, err := instanceBase(opts.URL); err != nil {
		return nil, err
	}
	return &List{opts: opts}, nil
}

// Run fetches and checks at once, then fetches every Every and re-checks
// every RecheckEvery, until ctx ends. A failed fetch keeps the previous
// entries (and logs why).
func (l *List) Run(ctx context.Context) {
	fetch := time.NewTicker(l.opts.Every)
	defer fetch.Stop()
	check := time.NewTicker(l.opts.RecheckEvery)
	defer check.Stop()
	l.logged(ctx, "shadowmere_refresh", l.Refresh(ctx))
	for {
		select {
		case <-ctx.Done():
			return
		case <-fetch.C:
			l.logged(ctx, "shadowmere_refresh", l.Refresh(ctx))
			check.Reset(l.opts.RecheckEvery)
		case <-check.C:
			l.Recheck(ctx)
			l.logged(ctx, "shadowmere_recheck", nil)
		}
	}
}

func (l *List) logged(ctx context.Context, action string, err error) {
	if ctx.Err() != nil {
		return
	}
	st := l.Status()
	if err != nil {
		l.opts.Log.Warn(action, "error", err.Error(), "fetched", st.Fetched, "live", st.Live)
		return
	}
	l.opts.Log.Info(action, "fetched", st.Fetched, "live", st.Live)
}

// Refresh fetches the list, checks every entry and keeps the live ones.
func (l *List) Refresh(ctx context.Context) error {
	ps, err := l.Fetch(ctx)
	if err != nil {
		l.mu.Lock()
		l.status.LastError = err.Error()
		l.mu.Unlock()
		return err
	}
	now := time.Now()
	l.mu.Lock()
	l.fetched = ps
	l.status.Fetched, l.status.LastFetch, l.status.LastError = len(ps), now, ""
	l.mu.Unlock()
	l.Recheck(ctx)
	return nil
}

// Recheck checks the entries of the last fetch again: the dead ones leave
// the live list, the revived ones come back.
func (l *List) Recheck(ctx context.Context) {
	l.mu.Lock()
	ps := l.fetched
	l.mu.Unlock()
	live := l.Check(ctx, ps)
	if ctx.Err() != nil {
		return // a check cut short would mark everything dead
	}
	l.mu.Lock()
	l.live = live
	l.status.Live, l.status.LastCheck = len(live), time.Now()
	l.mu.Unlock()
}

// Best returns up to n live proxies (every one if n <= 0) by latency, of
// country (an ISO code, any case) if not "".
func (l *List) Best(n int, country string) []Proxy {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := []Proxy{}
	for _, p := range l.live {
		if n > 0 && len(out) == n {
			break
		}
		if country == "" || strings.EqualFold(p.Country, country) {
			out = append(out, p)
		}
	}
	return out
}

// Status reports the last fetch and check.
func (l *List) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.status
}
