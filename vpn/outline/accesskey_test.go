package outline

import (
	"crypto/rand"
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
)

func TestAccessKeyURLIsSIP002(t *testing.T) {
	sec, err := NewSecret(rand.Reader)
	if err != nil || sec.Method != DefaultMethod || len(sec.Password) != 22 {
		t.Fatalf("secret %+v %v", sec, err)
	}
	raw := AccessKeyURL("vpn.example.net", 8388, sec, "Mi llave #1")
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme != "ss" || u.Host != "vpn.example.net:8388" || u.Fragment != "Mi llave #1" {
		t.Fatalf("url %q parsed as %+v", raw, u)
	}
	if strings.Contains(u.User.Username(), "=") {
		t.Fatal("userinfo is padded")
	}
	info, err := base64.RawURLEncoding.DecodeString(u.User.Username())
	if err != nil || string(info) != sec.Method+":"+sec.Password {
		t.Fatalf("userinfo %q %v", info, err)
	}
	if got := AccessKeyURL("2001:db8::1", 443, sec, ""); !strings.Contains(got, "@[2001:db8::1]:443/") {
		t.Fatalf("ipv6 host: %q", got)
	}
}

func TestAccessKeyURLPrefixEncodedAsOutline(t *testing.T) {
	sec := Secret{Method: DefaultMethod, Password: "pw"}
	// Outline's documented example: the TLS ClientHello-like prefix
	// "\x16\x03\x01\x00\xa8\x01\x01" is written %16%03%01%00%C2%A8%01%01.
	got := AccessKeyURLPrefix("h", 1, sec, "n", "\x16\x03\x01\x00\xa8\x01\x01")
	if !strings.HasSuffix(got, "@h:1/?outline=1&prefix=%16%03%01%00%C2%A8%01%01#n") {
		t.Fatalf("prefix URL %q", got)
	}
	if got := AccessKeyURLPrefix("h", 1, sec, "", "POST "); !strings.HasSuffix(got, "/?outline=1&prefix=POST%20") {
		t.Fatalf("prefix URL %q", got)
	}
	if AccessKeyURLPrefix("h", 1, sec, "n", "") != AccessKeyURL("h", 1, sec, "n") {
		t.Fatal("an empty prefix changed the URL")
	}
}
