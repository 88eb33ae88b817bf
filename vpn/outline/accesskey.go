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
	user := base64.RawURLEncoding.EncodeToString([]byte(s.Method + ":" + s.Password))
	u := "ss://" + user + "@" + net.JoinHostPort(host, strconv.Itoa(port)) + "/"
	if name != "" {
		u += "#" + urlFragment(name)
	}
	return u
}

// urlFragment escapes a key name for a URL fragment.
func urlFragment(name string) string { return url.PathEscape(name) }
