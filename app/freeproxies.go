package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/usipipo/usipipo/proxy/shadowmere"
	"github.com/usipipo/usipipo/store/model"
	"github.com/usipipo/usipipo/vpn/outline"
)

// Bounds of FreeProxies.
const (
	DefaultFreeProxies = 10
	MaxFreeProxies     = 50
)

// ErrFreeProxiesOff is asked of a node that keeps no free proxy list (no
// --shadowmere-url).
var ErrFreeProxiesOff = fmt.Errorf("free proxies are off on this node (no --shadowmere-url): %w", model.ErrState)

// FreeProxySource is a live list of checked free proxies: a
// *shadowmere.List, which the node runs when --shadowmere-url is set.
type FreeProxySource interface {
	Best(n int, country string) []shadowmere.Proxy
}

type freeSource struct{ FreeProxySource }

// SetFreeProxySource makes src the source of FreeProxies; nil turns them
// off. Safe to call while the service is in use.
func (s *Service) SetFreeProxySource(src FreeProxySource) {
	if src == nil {
		s.free.Store(nil)
		return
	}
	s.free.Store(&freeSource{src})
}

// FreeProxy is one working public Shadowsocks proxy, as our own check last
// found it, with the ss:// URL users import (Config.Text; QR through
// Service.QR with version 0: the config's id is derived from its content).
type FreeProxy struct {
	Server    string        `json:"server"`
	Port      int           `json:"port"`
	Method    string        `json:"method"`
	Password  string        `json:"password"` // published by the list; not ours to protect
	Remarks   string        `json:"remarks,omitempty"`
	Country   string        `json:"country,omitempty"` // ISO 3166 code, when the list knows it
	LatencyMS float64       `json:"latency_ms"`
	Check     string        `json:"check"` // "shadowsocks" (a handshake and a reply through it) or "tcp"
	CheckedAt time.Time     `json:"checked_at"`
	Config    *ClientConfig `json:"config"`
}

// FreeProxies returns up to n (DefaultFreeProxies if n <= 0, at most
// MaxFreeProxies) working free proxies by latency, of country (an ISO
// 3166 alpha-2 code, any case) unless it is "".
func (s *Service) FreeProxies(ctx context.Context, country string, n int) ([]FreeProxy, error) {
	src := s.free.Load()
	if src == nil {
		return nil, ErrFreeProxiesOff
	}
	country = strings.ToUpper(strings.TrimSpace(country))
	if country != "" && !isCountryCode(country) {
		return nil, fmt.Errorf("country %q is not a two-letter ISO code: %w", country, model.ErrInvalid)
	}
	switch {
	case n <= 0:
		n = DefaultFreeProxies
	case n > MaxFreeProxies:
		return nil, fmt.Errorf("limit %d is above %d: %w", n, MaxFreeProxies, model.ErrInvalid)
	}
	best := src.Best(n, country)
	out := make([]FreeProxy, 0, len(best))
	for _, p := range best {
		out = append(out, freeProxy(p))
	}
	return out, ctx.Err()
}

func freeProxy(p shadowmere.Proxy) FreeProxy {
	url := outline.AccessKeyURL(p.Server, p.Port, outline.Secret{Method: p.Method, Password: p.Password}, p.Remarks)
	sum := sha256.Sum256([]byte(url))
	id := "free-" + hex.EncodeToString(sum[:8])
	name := id
	if p.Country != "" {
		name = "free-" + strings.ToLower(p.Country) + "-" + hex.EncodeToString(sum[:4])
	}
	return FreeProxy{Server: p.Server, Port: p.Port, Method: p.Method, Password: p.Password, Remarks: p.Remarks,
		Country: p.Country, LatencyMS: float64(p.Latency.Microseconds()) / 1000, Check: p.Check, CheckedAt: p.Checked,
		Config: &ClientConfig{ID: id, Type: model.Outline, Filename: name + ".txt", Text: url}}
}

func isCountryCode(c string) bool {
	return len(c) == 2 && c[0] >= 'A' && c[0] <= 'Z' && c[1] >= 'A' && c[1] <= 'Z'
}
