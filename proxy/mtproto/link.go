// This file holds per-user secrets and the links users open.

package mtproto

import (
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"strconv"
)

// NewSecret returns 16 random bytes: the key of a user's FakeTLS secret.
func NewSecret(r io.Reader) ([]byte, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("generating mtproto secret: %w", err)
	}
	return b, nil
}

// FakeTLSSecret is the "ee" secret clients use: ee, the 16 key bytes, and
// the cloak domain, hex-encoded.
func FakeTLSSecret(key []byte, domain string) string {
	return "ee" + hex.EncodeToString(key) + hex.EncodeToString([]byte(domain))
}

// Links returns the tg://proxy and https://t.me/proxy links of a secret.
func Links(host string, port int, secret string) (tg, web string) {
	q := url.Values{"server": {host}, "port": {strconv.Itoa(port)}, "secret": {secret}}.Encode()
	return "tg://proxy?" + q, "https://t.me/proxy?" + q
}
