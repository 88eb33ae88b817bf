// Package shadowmere keeps a list of working free Shadowsocks proxies
// fetched from a Shadowmere instance (GET /api/sub/ and the paginated GET
// /api/proxies/?is_active=true), re-checks each one itself with a TCP
// connect through the egress dialer (so a hostile entry pointing at a
// private address is refused, never probed), drops the dead ones and
// serves the best by latency, optionally by country.
package shadowmere

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Proxy is one Shadowsocks server.
type Proxy struct {
	Server   string        `json:"server"`
	Port     int           `json:"server_port"`
	Password string        `json:"password"`
	Method   string        `json:"method"`
	Remarks  string        `json:"remarks"`
	Country  string        `json:"country,omitempty"` // ISO code, from /api/proxies/
	Latency  time.Duration `json:"latency"`
	Checked  time.Time     `json:"checked"`
}

// Addr is host:port.
func (p Proxy) Addr() string { return net.JoinHostPort(p.Server, strconv.Itoa(p.Port)) }

// Options configure a List.
type Options struct {
	URL          string                                                            // --shadowmere-url
	HTTP         *http.Client                                                      // (*egress.Dialer).HTTPClient
	Dial         func(ctx context.Context, network, addr string) (net.Conn, error) // (*egress.Dialer).DialContext
	Every        time.Duration                                                     // refresh and re-check period; 0: 1 h
	CheckTimeout time.Duration                                                     // per proxy; 0: 5 s
	MaxProxies   int                                                               // 0: 2000
	MaxPages     int                                                               // 0: 50
}

// List is the in-memory list of live proxies.
type List struct {
	opts   Options
	mu     sync.Mutex
	live   []Proxy
	cancel context.CancelFunc
	done   chan struct{}
}

// New starts refreshing in the background (first refresh at once).
func New(opts Options) (*List, error) {
	if opts.URL == "" || opts.HTTP == nil || opts.Dial == nil {
		return nil, fmt.Errorf("shadowmere: URL, HTTP and Dial are required")
	}
	if opts.Every <= 0 {
		opts.Every = time.Hour
	}
	if opts.CheckTimeout <= 0 {
		opts.CheckTimeout = 5 * time.Second
	}
	if opts.MaxProxies <= 0 {
		opts.MaxProxies = 2000
	}
	if opts.MaxPages <= 0 {
		opts.MaxPages = 50
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &List{opts: opts, cancel: cancel, done: make(chan struct{})}
	go l.loop(ctx)
	return l, nil
}

// Close stops refreshing and waits.
func (l *List) Close() error {
	l.cancel()
	<-l.done
	return nil
}

func (l *List) loop(ctx context.Context) {
	defer close(l.done)
	t := time.NewTicker(l.opts.Every)
	defer t.Stop()
	for {
		l.Refresh(ctx) // a failed fetch keeps the previous list
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Refresh fetches the list, checks every entry and keeps the live ones.
func (l *List) Refresh(ctx context.Context) error {
	ps, err := l.Fetch(ctx)
	if err != nil {
		return err
	}
	live := l.Check(ctx, ps)
	l.mu.Lock()
	l.live = live
	l.mu.Unlock()
	return nil
}

// Best returns up to n live proxies by latency, of country if not "".
func (l *List) Best(n int, country string) []Proxy {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Proxy
	for _, p := range l.live {
		if country == "" || p.Country == country {
			out = append(out, p)
		}
		if len(out) == n {
			break
		}
	}
	return out
}

// Check probes each proxy (16 at a time) and returns the live ones sorted
// by latency.
func (l *List) Check(ctx context.Context, ps []Proxy) []Proxy {
	var mu sync.Mutex
	var live []Proxy
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if lat, err := l.probe(ctx, p); err == nil {
				p.Latency, p.Checked = lat, time.Now()
				mu.Lock()
				live = append(live, p)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	slices.SortFunc(live, func(a, b Proxy) int { return int(a.Latency - b.Latency) })
	return live
}

func (l *List) probe(ctx context.Context, p Proxy) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, l.opts.CheckTimeout)
	defer cancel()
	start := time.Now()
	c, err := l.opts.Dial(ctx, "tcp", p.Addr())
	if err != nil {
		return 0, err
	}
	c.Close()
	return time.Since(start), nil
}

// Fetch reads /api/sub/ and every page of /api/proxies/?is_active=true and
// merges them by address (country from the latter).
func (l *List) Fetch(ctx context.Context) ([]Proxy, error) {
	base, err := url.Parse(l.opts.URL)
	if err != nil {
		return nil, fmt.Errorf("shadowmere: url: %w", err)
	}
	var subs []Proxy
	if err := l.get(ctx, base.JoinPath("/api/sub/").String(), &subs); err != nil {
		return nil, err
	}
	countries, err := l.countries(ctx, base)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []Proxy
	for _, p := range subs {
		if p.Server == "" || p.Port <= 0 || p.Port > 65535 || seen[p.Addr()] || len(out) >= l.opts.MaxProxies {
			continue
		}
		seen[p.Addr()] = true
		p.Country = countries[p.Addr()]
		out = append(out, p)
	}
	return out, nil
}

type page struct {
	Next    *string `json:"next"`
	Results []struct {
		IP      string `json:"ip_address"`
		Port    int    `json:"port"`
		Country string `json:"location_country_code"`
	} `json:"results"`
}

// countries follows the pagination of /api/proxies/, staying on the host.
func (l *List) countries(ctx context.Context, base *url.URL) (map[string]string, error) {
	out := map[string]string{}
	u := base.JoinPath("/api/proxies/")
	u.RawQuery = "is_active=true"
	next := u.String()
	for i := 0; next != "" && i < l.opts.MaxPages; i++ {
		var pg page
		if err := l.get(ctx, next, &pg); err != nil {
			return nil, err
		}
		for _, r := range pg.Results {
			out[net.JoinHostPort(r.IP, strconv.Itoa(r.Port))] = r.Country
		}
		next = ""
		if pg.Next != nil {
			nu, err := url.Parse(*pg.Next)
			if err != nil || nu.Host != base.Host {
				return nil, fmt.Errorf("shadowmere: next page %q off the instance", *pg.Next)
			}
			next = nu.String()
		}
	}
	return out, nil
}

func (l *List) get(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("shadowmere: %w", err)
	}
	resp, err := l.opts.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("shadowmere: GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("shadowmere: GET %s: %s", u, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(v); err != nil {
		return fmt.Errorf("shadowmere: GET %s: %w", u, err)
	}
	return nil
}
