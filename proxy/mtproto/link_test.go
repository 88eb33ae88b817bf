package mtproto

import (
	"net/url"
	"strings"
	"testing"
)

func TestLinks(t *testing.T) {
	key := []byte("0123456789abcdef")
	s := FakeTLSSecret(key, "vpn.example.net")
	if !strings.HasPrefix(s, "ee30313233") || !strings.HasSuffix(s, "76706e2e6578616d706c652e6e6574") {
		t.Fatalf("secret %q", s)
	}
	tg, web := Links("vpn.example.net", 443, s)
	for _, l := range []string{tg, web} {
		u, err := url.Parse(l)
		if err != nil || u.Query().Get("secret") != s || u.Query().Get("port") != "443" || u.Query().Get("server") != "vpn.example.net" {
			t.Fatalf("link %q: %v", l, err)
		}
	}
	if !strings.HasPrefix(tg, "tg://proxy?") || !strings.HasPrefix(web, "https://t.me/proxy?") {
		t.Fatal(tg, web)
	}
}

func TestPaddedSecret(t *testing.T) {
	if s := PaddedSecret([]byte("0123456789abcdef")); s != "dd30313233343536373839616263646566" {
		t.Fatalf("secret %q", s)
	}
}

func TestValidCloakDomain(t *testing.T) {
	for d, want := range map[string]bool{
		"vpn.example.net": true, "www.cloudflare.com": true, "a-b.c0.io": true, "xn--80ak6aa92e.com": true,
		"": false, "localhost": false, "203.0.113.7": false, "2001:db8::7": false, "::1": false,
		"vpn.example.net.": false, "-a.example": false, "a-.example": false, "a..example": false,
		"under_score.example": false, "space .example": false, "0177.0.0.1": false, "10.1": false,
		strings.Repeat("a", 64) + ".example": false, strings.Repeat("a.", 127) + "ab": false,
	} {
		if got := ValidCloakDomain(d); got != want {
			t.Errorf("ValidCloakDomain(%q) = %v, want %v", d, got, want)
		}
	}
}
