// Package outline is the node's Shadowsocks (Outline) data plane. This file
// holds the access key material and the ss:// URLs users import.
package outline

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
)

// DefaultMethod is the cipher of new access keys.
const DefaultMethod = "chacha20-ietf-poly1305"

// Secret is what the node keeps sealed for an access key.
type Secret struct {
	Method   string `json:"method"`
	Password string `json:"password"`
}

// NewSecret generates an access key password (22 base64url characters, 132
// bits, what Outline's own server hands out).
func NewSecret(r io.Reader) (Secret, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(r, b); err != nil {
		return Secret{}, fmt.Errorf("generating outline password: %w", err)
	}
	return Secret{Method: DefaultMethod, Password: base64.RawURLEncoding.EncodeToString(b)}, nil
}

// Marshal encodes the secret for sealing.
func (s Secret) Marshal() ([]byte, error) { return json.Marshal(s) }

// ParseSecret decodes an opened secret.
func ParseSecret(b []byte) (Secret, error) {
	var s Secret
	if err := json.Unmarshal(b, &s); err != nil || s.Method == "" || s.Password == "" {
		return Secret{}, fmt.Errorf("outline secret is malformed")
	}
	return s, nil
}

// AccessKeyURL is a SIP002 ss:// URL: base64url (unpadded) userinfo of
// method:password, the server, and the key's name as the fragment.
func AccessKeyURL(host string, port int, s Secret, name string) string {
	return AccessKeyURLPrefix(host, port, s, name, "")
}

// AccessKeyURLPrefix is AccessKeyURL with Outline's salt prefix (raw bytes,
// "" for none) as the "prefix" query parameter, encoded as Outline does:
// each byte is the code point of the same value, percent-encoded as UTF-8.
func AccessKeyURLPrefix(host string, port int, s Secret, name, prefix string) string {
	user := base64.RawURLEncoding.EncodeToString([]byte(s.Method + ":" + s.Password))
	u := "ss://" + user + "@" + net.JoinHostPort(host, strconv.Itoa(port)) + "/"
	if prefix != "" {
		u += "?outline=1&prefix=" + componentEscape(PrefixText(prefix))
	}
	if name != "" {
		u += "#" + urlFragment(name)
	}
	return u
}

// urlFragment escapes a key name for a URL fragment.
func urlFragment(name string) string { return url.PathEscape(name) }

// PrefixText is a raw salt prefix as Outline writes it in JSON and URLs:
// one code point (U+0000..U+00FF) per byte.
func PrefixText(raw string) string {
	r := make([]rune, len(raw))
	for i := range len(raw) {
		r[i] = rune(raw[i])
	}
	return string(r)
}

// componentEscape percent-encodes s as JavaScript's encodeURIComponent
// does, except that it also escapes !'()*: every byte of its UTF-8 form
// outside A-Z a-z 0-9 - _ . ~ becomes %XX.
func componentEscape(s string) string {
	const hex = "0123456789ABCDEF"
	var b []byte
	for i := range len(s) {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hex[c>>4], hex[c&15])
	}
	return string(b)
}
