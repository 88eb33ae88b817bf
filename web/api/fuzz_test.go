package api

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/usipipo/usipipo/web"
)

// FuzzDecodeBodies feeds arbitrary bodies to every request decoder: each
// either decodes or returns a 400 problem, never panics, and what decodes
// survives a round trip.
func FuzzDecodeBodies(f *testing.F) {
	for _, s := range []string{`{}`, `{"user_id":"x","vpn_type":"wireguard","is_trial":false}`, `{"telegram_id":1e99}`,
		`{"scopes":["read"],"expires_at":"2026-01-01T00:00:00Z"}`, `{"limits":{"data_cap":-1}}`, `[`, `{"a":1}{}`, "\xff",
		`{"amount":9223372036854775808}`, `{"username":"\u0000"}`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, mk := range []func() any{
			func() any { return new(loginRequest) }, func() any { return new(refreshRequest) },
			func() any { return new(createUserRequest) }, func() any { return new(reasonRequest) },
			func() any { return new(creditsRequest) }, func() any { return new(grantRequest) },
			func() any { return new(planRequest) }, func() any { return new(createKeyRequest) },
			func() any { return new(vpnCreateRequest) }, func() any { return new(createProxyRequest) },
			func() any { return new(createAPIKeyRequest) },
		} {
			v := mk()
			err := decodeJSON(body, v)
			if err != nil {
				var p *web.Problem
				if !errors.As(err, &p) || p.Status != 400 {
					t.Fatalf("%T: error %v is no 400 problem", v, err)
				}
				continue
			}
			again, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("%T: re-encoding: %v", v, err)
			}
			w := mk()
			if err := decodeJSON(again, w); err != nil {
				t.Fatalf("%T: round trip of %s: %v", v, again, err)
			}
		}
	})
}

// FuzzVerifyJWT: no input but the signer's own tokens verifies, and
// verifying never panics.
func FuzzVerifyJWT(f *testing.F) {
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	now := time.Unix(1_800_000_000, 0)
	s := newSigner(priv, func() time.Time { return now })
	good, _, err := s.sign("admin", admin, "fam", false, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c")
	f.Add(good[:len(good)-1] + "B")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := s.verify(tok)
		if err != nil {
			return
		}
		// Only a token this signer made verifies, spelt exactly as it
		// made it: Ed25519 signatures are deterministic and the decoding
		// is strict.
		h, rest, _ := strings.Cut(tok, ".")
		p, _, _ := strings.Cut(rest, ".")
		want := h + "." + p + "." + b64(ed25519.Sign(priv, []byte(h+"."+p)))
		if tok != want || c.Subject == "" {
			t.Fatalf("forged token verified: %q → %+v", tok, c)
		}
	})
}
