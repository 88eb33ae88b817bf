package shadowmere

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxBody bounds one API response: a hostile instance cannot exhaust memory.
const maxBody = 16 << 20

// instanceBase is the Shadowmere instance's root: --shadowmere-url may name
// the root or its /api/sub endpoint (what users copy from the site).
func instanceBase(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("shadowmere: url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("shadowmere: url %q: want http(s)://host[/path]", raw)
	}
	u.Path = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/api/sub")
	u.RawQuery, u.Fragment = "", ""
	return u, nil
}

// Fetch reads /api/sub/ and every page of /api/proxies/?is_active=true and
// merges them by address (country from the latter). Entries without a
// usable address and duplicates are dropped; at most MaxProxies are kept.
func (l *List) Fetch(ctx context.Context) ([]Proxy, error) {
	base, err := instanceBase(l.opts.URL)
	if err != nil {
		return nil, err
	}
	var subs []Proxy
	if err := l.get(ctx, base.JoinPath("/api/sub/").String(), &subs); err != nil {
		return nil, err
	}
	countries, err := l.countries(ctx, base)
	if err != nil {
		return nil, err
	}
	return merge(subs, countries, l.opts.MaxProxies), nil
}

// merge keeps up to max entries of subs with a usable, distinct address,
// with their country from countries and no check results of their own.
func merge(subs []Proxy, countries map[string]string, max int) []Proxy {
	seen := map[string]bool{}
	var out []Proxy
	for _, p := range subs {
		if len(out) >= max {
			break
		}
		if p.Server == "" || p.Port <= 0 || p.Port > 65535 || seen[p.Addr()] {
			continue
		}
		seen[p.Addr()] = true
		p.Country = strings.ToUpper(countries[p.Addr()])
		p.Latency, p.Checked, p.Check = 0, time.Time{}, "" // ours to measure
		out = append(out, p)
	}
	return out
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
		if pg.Next != nil && *pg.Next != "" {
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
	req.Header.Set("Accept", "application/json")
	resp, err := l.opts.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("shadowmere: GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("shadowmere: GET %s: %s", u, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(v); err != nil {
		return fmt.Errorf("shadowmere: GET %s: %w", u, err)
	}
	return nil
}
