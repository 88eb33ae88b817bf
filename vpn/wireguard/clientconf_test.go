package wireguard

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"
)

func TestSecretRoundTripAndConfig(t *testing.T) {
	sec, pub, err := NewSecret(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := sec.Marshal()
	got, err := ParseSecret(b)
	if err != nil || !bytes.Equal(got.Private, sec.Private) || !bytes.Equal(got.PSK, sec.PSK) {
		t.Fatalf("round trip: %v", err)
	}
	if p, _ := PublicKey(sec.Private); p != pub {
		t.Fatal("public key differs")
	}
	conf := ClientConfig{Private: sec.Private, PSK: sec.PSK, AddrV4: "10.66.0.2", AddrV6: "fd66::2", DNS: []string{"10.66.0.1"},
		ServerKey: pub, Endpoint: "[2001:db8::1]:51820", Keepalive: 25}.Render()
	want := "[Interface]\nPrivateKey = " + base64.StdEncoding.EncodeToString(sec.Private) + "\nAddress = 10.66.0.2/32, fd66::2/128\nDNS = 10.66.0.1\n\n[Peer]\nPublicKey = " + pub +
		"\nPresharedKey = " + base64.StdEncoding.EncodeToString(sec.PSK) + "\nEndpoint = [2001:db8::1]:51820\nAllowedIPs = 0.0.0.0/0, ::/0\nPersistentKeepalive = 25\n"
	if conf != want {
		t.Fatalf("config:\n%s\nwant:\n%s", conf, want)
	}
	for _, bad := range []string{"", "{}", `{"private":"AA==","psk":"AA=="}`, "null"} {
		if _, err := ParseSecret([]byte(bad)); err == nil || strings.Contains(err.Error(), "AA") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func FuzzParseSecret(f *testing.F) {
	f.Add([]byte(`{"private":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","psk":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSecret(b)
		if err == nil && (len(s.Private) != 32 || len(s.PSK) != 32) {
			t.Fatal("accepted a malformed secret")
		}
	})
}
