package app

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/usipipo/usipipo/proxy/mtproto"
	"github.com/usipipo/usipipo/store/cache"
	"github.com/usipipo/usipipo/store/model"
	"github.com/usipipo/usipipo/vpn/outline"
	"github.com/usipipo/usipipo/vpn/wireguard"
)

// ClientConfig is what a user imports: a wg-quick file, an ss:// access key
// or a tg://proxy link. Every adapter hands out this same value.
type ClientConfig struct {
	ID       string        `json:"id"`
	Type     model.KeyType `json:"type"`
	Filename string        `json:"filename"`
	Text     string        `json:"text"`
	Link     string        `json:"link,omitempty"` // t.me link for MTProto
	// Dynamic is an Outline key's ssconf:// URL, which follows rotations and
	// shows expiry or cap messages; set when the public listener is on.
	Dynamic string `json:"dynamic,omitempty"`
}

// KeyConfig renders a key's client configuration. It is cached by key id
// and version: a rotation or a limit change is never answered from an older
// rendering.
func (s *Service) KeyConfig(ctx context.Context, id string) (*ClientConfig, error) {
	if !model.ValidID(id) {
		return nil, fmt.Errorf("key id %q: %w", id, model.ErrInvalid)
	}
	k, err := s.st.Key(id)
	if err != nil {
		return nil, err
	}
	if k.Status == model.KeyRevoked {
		return nil, fmt.Errorf("key %s is revoked: %w", id, model.ErrState)
	}
	prefix := ""
	if k.Type == model.Outline {
		prefix = prefixBytes(s.Policy().OutlinePrefix)
	}
	ck := cache.Key{Kind: "key-config", ID: k.ID, Version: k.Version, Variant: prefix}
	return cache.GetOrCompute(ctx, s.cache, ck, cache.Configs, func() (*ClientConfig, int64, error) {
		c, err := s.renderKey(k, prefix)
		if err != nil {
			return nil, 0, err
		}
		return c, int64(len(c.Text) + 128), nil
	})
}

func (s *Service) renderKey(k *model.Key, prefix string) (*ClientConfig, error) {
	plain, err := s.open(recKey, k.ID, k.Version, k.Secret)
	if err != nil {
		return nil, err
	}
	c := &ClientConfig{ID: k.ID, Type: k.Type}
	switch k.Type {
	case model.WireGuard:
		sec, err := wireguard.ParseSecret(plain)
		if err != nil {
			return nil, err
		}
		dns := s.ends.WGDNS
		if len(dns) == 0 {
			dns = []string{Gateway(s.pool4).String(), Gateway(s.pool6).String()}
		}
		c.Filename = fileName(k.Name, k.ID) + ".conf"
		c.Text = wireguard.ClientConfig{Private: sec.Private, PSK: sec.PSK, AddrV4: k.AddrV4, AddrV6: k.AddrV6,
			DNS: dns, ServerKey: s.ends.WGPublicKey, Endpoint: hostPort(s.ends.PublicHost, s.ends.WGPort),
			AllowedIPs: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")},
			Keepalive:  25}.Render()
	case model.Outline:
		sec, err := outline.ParseSecret(plain)
		if err != nil {
			return nil, err
		}
		c.Filename = fileName(k.Name, k.ID) + ".txt"
		c.Text = outline.AccessKeyURLPrefix(s.host(), s.ends.SSPort, sec, k.Name, prefix)
		if c.Dynamic, err = s.dynamicURL(k); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("key type %q: %w", k.Type, model.ErrInvalid)
	}
	return c, nil
}

// ProxyConfig renders an MTProto secret's links.
func (s *Service) ProxyConfig(ctx context.Context, id string) (*ClientConfig, error) {
	p, err := s.st.Proxy(id)
	if err != nil {
		return nil, err
	}
	if p.Status == model.KeyRevoked {
		return nil, fmt.Errorf("proxy %s is revoked: %w", id, model.ErrState)
	}
	ck := cache.Key{Kind: "proxy-config", ID: p.ID, Version: p.Version}
	return cache.GetOrCompute(ctx, s.cache, ck, cache.Configs, func() (*ClientConfig, int64, error) {
		key, err := s.open(recProxy, p.ID, p.Version, p.Secret)
		if err != nil {
			return nil, 0, err
		}
		tg, web := mtproto.Links(s.host(), s.ends.MTProtoPort, s.ProxySecrets().Secret(key))
		c := &ClientConfig{ID: p.ID, Type: model.MTProto, Filename: "mtproto-" + p.ID + ".txt", Text: tg, Link: web}
		return c, int64(len(tg) + len(web) + 128), nil
	})
}

// QR renders a configuration as a PNG QR code, cached beside it.
func (s *Service) QR(ctx context.Context, c *ClientConfig, version uint64) ([]byte, error) {
	ck := cache.Key{Kind: string(c.Type) + "-config", ID: c.ID, Version: version, Variant: "qr-png"}
	return cache.GetOrCompute(ctx, s.cache, ck, cache.Configs, func() ([]byte, int64, error) {
		png, err := qrcode.Encode(c.Text, qrcode.Medium, 512)
		if err != nil {
			return nil, 0, fmt.Errorf("rendering QR code: %w", err)
		}
		return png, int64(len(png)), nil
	})
}

func (s *Service) host() string {
	if s.ends.PublicHost != "" {
		return s.ends.PublicHost
	}
	return "127.0.0.1"
}

// cloak is the domain FakeTLS clients send as their server name; "" when
// the node hands out dd secrets (proxy_secret.go), and then the proxy takes
// any name, so ee links handed out before still work.
func (s *Service) cloak() string { return s.ProxySecrets().Domain }

func hostPort(host string, port int) string {
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// fileName makes a safe file name from a key's name.
func fileName(name, id string) string {
	var b strings.Builder
	for _, r := range name {
		if r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 || b.Len() > 15 { // wg-quick interface names are at most 15 bytes
		return "usipipo-" + id[len(id)-6:]
	}
	return b.String()
}
