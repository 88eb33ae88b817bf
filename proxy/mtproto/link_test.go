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
