package app

import (
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/keyring"
)

func TestChooseProxySecrets(t *testing.T) {
	for _, tc := range []struct {
		name, domain, host string
		fakeTLS            bool
		cloak              string
		why                string
	}{
		{"DNS host", "", "vpn.example.net", true, "vpn.example.net", "--public-host"},
		{"DNS host, absolute, capitals", "", "VPN.Example.net.", true, "vpn.example.net", "--public-host"},
		{"IPv4 host", "", "203.0.113.7", false, "", "--public-host 203.0.113.7 is an IP address"},
		{"IPv6 host", "", "2001:db8::7", false, "", "is an IP address"},
		{"no host", "", "", false, "", "--public-host is not set"},
		{"single-label host", "", "vpn", false, "", "not a DNS name"},
		{"flag over IP host", "www.example.org", "203.0.113.7", true, "www.example.org", "--mtproto-domain"},
		{"flag over DNS host", "www.example.org", "vpn.example.net", true, "www.example.org", "--mtproto-domain"},
		// Endpoints default the domain to the host (service.go): that is
		// the host's choice, not the flag's.
		{"defaulted from IP host", "203.0.113.7", "203.0.113.7", false, "", "is an IP address"},
		{"bad flag", "203.0.113.8", "vpn.example.net", false, "", "--mtproto-domain \"203.0.113.8\" is not a DNS name"},
	} {
		p := ChooseProxySecrets(tc.domain, tc.host)
		if p.FakeTLS != tc.fakeTLS || p.Domain != tc.cloak || !strings.Contains(p.Why, tc.why) {
			t.Errorf("%s: %+v, want ee=%v domain %q, why mentioning %q", tc.name, p, tc.fakeTLS, tc.cloak, tc.why)
		}
		key := []byte("0123456789abcdef")
		want := "dd" + hex.EncodeToString(key)
		if tc.fakeTLS {
			want = "ee" + hex.EncodeToString(key) + hex.EncodeToString([]byte(tc.cloak))
		}
		if s := p.Secret(key); s != want {
			t.Errorf("%s: secret %q, want %q", tc.name, s, want)
		}
	}
}

// A proxy's links carry a dd secret for an IP public host, an ee secret
// naming the public host when it is a DNS name, and one naming
// --mtproto-domain when given; the proxy is told the same domain.
func TestProxyConfigSecretKind(t *testing.T) {
	for _, tc := range []struct {
		name, host, domain string
		prefix, cloak      string
	}{
		{"IP host", "203.0.113.7", "", "dd", ""},
		{"DNS host", "vpn.example.net", "", "ee", "vpn.example.net"},
		{"flag", "203.0.113.7", "www.example.org", "ee", "www.example.org"},
	} {
		st, err := store.Open(store.Options{Path: filepath.Join(t.TempDir(), "usipipo.db")})
		if err != nil {
			t.Fatal(err)
		}
		dk, err := keyring.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		svc, err := New(Options{Store: st, DataKey: dk, Ends: Endpoints{PublicHost: tc.host, MTProtoPort: 443, CloakDomain: tc.domain}})
		if err != nil {
			t.Fatal(err)
		}
		u, err := svc.RegisterUser(ctx(), ActorCLI, NewUser{TelegramID: 4040})
		if err != nil {
			t.Fatal(err)
		}
		px, err := svc.CreateProxy(ctx(), ActorCLI, ProxyRequest{UserID: u.ID, Admin: true})
		if err != nil {
			t.Fatal(err)
		}
		c, err := svc.ProxyConfig(ctx(), px.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Check(); err != nil {
			t.Errorf("store check: %v", err)
		}
		st.Close()
		for _, link := range []string{c.Text, c.Link} {
			l, err := url.Parse(link)
			if err != nil {
				t.Fatal(err)
			}
			q := l.Query()
			secret := q.Get("secret")
			if q.Get("server") != tc.host || !strings.HasPrefix(secret, tc.prefix) || len(secret) != 34+2*len(tc.cloak) ||
				!strings.HasSuffix(secret, hex.EncodeToString([]byte(tc.cloak))) {
				t.Errorf("%s: link %q", tc.name, link)
			}
		}
		if svc.CloakDomain() != tc.cloak {
			t.Errorf("%s: the proxy is told %q, want %q", tc.name, svc.CloakDomain(), tc.cloak)
		}
	}
}
