package api

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// Access tokens are JWTs (RFC 7519) signed with Ed25519 (RFC 8037,
// "alg":"EdDSA") and nothing else. The signer is written here rather than
// taken from a JWT library on purpose: it has exactly one algorithm, so
// there is no algorithm negotiation to get wrong — a header naming any
// other "alg" ("none", "HS256" keyed with the public key, …) is refused
// before the signature is looked at, and the verification key is never
// chosen from the token. It is about a hundred lines, fuzzed in
// jwt_test.go.

const (
	jwtAlg      = "EdDSA"
	jwtIssuer   = "usipipo"
	jwtAudience = "usipipo-api"
	// clockSkew is the leeway for iat/nbf in the future.
	clockSkew = 30 * time.Second
	// maxTokenLen bounds what is parsed at all.
	maxTokenLen = 4096
)

var errBadToken = errors.New("invalid access token")

type jwtHeader struct {
	Alg string `json:"alg"`
	Typ string `json:"typ,omitempty"`
	Kid string `json:"kid,omitempty"`
}

// claims of an access token.
type claims struct {
	Issuer   string `json:"iss"`
	Audience string `json:"aud"`
	Subject  string `json:"sub"` // admin username
	IssuedAt int64  `json:"iat"`
	NotAfter int64  `json:"exp"`
	ID       string `json:"jti"`
	Scope    string `json:"scope"`
	Family   string `json:"fam"` // refresh-token family; revoking it ends its access tokens
	// MustChange marks a login with a one-time password: the token is
	// good for changing the password and nothing else.
	MustChange bool `json:"mcp,omitempty"`
}

type signer struct {
	priv   ed25519.PrivateKey
	pub    ed25519.PublicKey
	kid    string
	header string // encoded, fixed
	now    func() time.Time
}

func newSigner(priv ed25519.PrivateKey, now func() time.Time) *signer {
	pub := priv.Public().(ed25519.PublicKey)
	sum := sha256.Sum256(pub)
	kid := hex.EncodeToString(sum[:8])
	h, _ := json.Marshal(jwtHeader{Alg: jwtAlg, Typ: "JWT", Kid: kid})
	return &signer{priv: priv, pub: pub, kid: kid, header: b64(h), now: now}
}

// b64strict refuses non-canonical encodings, so one signed token has one
// spelling.
var b64strict = base64.RawURLEncoding.Strict()

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// sign issues an access token for subject with ttl.
func (s *signer) sign(subject, scope, family string, mustChange bool, ttl time.Duration) (string, time.Time, error) {
	now := s.now()
	var jti [12]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", time.Time{}, err
	}
	exp := now.Add(ttl)
	c := claims{Issuer: jwtIssuer, Audience: jwtAudience, Subject: subject, IssuedAt: now.Unix(),
		NotAfter: exp.Unix(), ID: b64(jti[:]), Scope: scope, Family: family, MustChange: mustChange}
	body, err := json.Marshal(c)
	if err != nil {
		return "", time.Time{}, err
	}
	signing := s.header + "." + b64(body)
	sig := ed25519.Sign(s.priv, []byte(signing))
	return signing + "." + b64(sig), exp, nil
}

// verify checks a token's header, signature and claims and returns its
// claims. Any failure is errBadToken.
func (s *signer) verify(tok string) (*claims, error) {
	if len(tok) > maxTokenLen {
		return nil, errBadToken
	}
	h, rest, ok := strings.Cut(tok, ".")
	if !ok {
		return nil, errBadToken
	}
	p, sig, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(sig, ".") {
		return nil, errBadToken
	}
	hb, err := b64strict.DecodeString(h)
	if err != nil {
		return nil, errBadToken
	}
	var hdr jwtHeader
	if err := strictJSON(hb, &hdr); err != nil || hdr.Alg != jwtAlg || (hdr.Typ != "" && hdr.Typ != "JWT") ||
		(hdr.Kid != "" && hdr.Kid != s.kid) {
		return nil, errBadToken
	}
	sb, err := b64strict.DecodeString(sig)
	if err != nil || len(sb) != ed25519.SignatureSize {
		return nil, errBadToken
	}
	if !ed25519.Verify(s.pub, []byte(tok[:len(h)+1+len(p)]), sb) {
		return nil, errBadToken
	}
	pb, err := b64strict.DecodeString(p)
	if err != nil {
		return nil, errBadToken
	}
	var c claims
	if err := strictJSON(pb, &c); err != nil {
		return nil, errBadToken
	}
	now := s.now()
	if c.Issuer != jwtIssuer || c.Audience != jwtAudience || c.Subject == "" ||
		now.Unix() >= c.NotAfter || time.Unix(c.IssuedAt, 0).After(now.Add(clockSkew)) {
		return nil, errBadToken
	}
	return &c, nil
}

// strictJSON decodes exactly one JSON object with no unknown fields.
func strictJSON(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errBadToken
	}
	return nil
}
