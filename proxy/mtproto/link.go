// This file holds per-user secrets and the links users open.

package mtproto

import (
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
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
// the cloak domain, hex-encoded. The domain must satisfy ValidCloakDomain:
// clients send it as the TLS server name.
func FakeTLSSecret(key []byte, domain string) string {
	return "ee" + hex.EncodeToString(key) + hex.EncodeToString([]byte(domain))
}

// PaddedSecret is the "dd" secret: obfuscated2 with the padded
// intermediate transport, for when no cloak domain is at hand. The server
// accepts it beside FakeTLS unless Options.DisableDD.
func PaddedSecret(key []byte) string {
	return "dd" + hex.EncodeToString(key)
}

// ValidCloakDomain reports whether d can be a FakeTLS secret's domain: a
// DNS name as a TLS server name carries it (RFC 6066: letters, digits and
// hyphens in dot-separated labels, no trailing dot, no IP address), with
// at least two labels, as a public site's name has. An IP address in the
// server name is something no browser sends, so it would single the proxy
// out.
func ValidCloakDomain(d string) bool {
	if len(d) == 0 || len(d) > 253 || !strings.Contains(d, ".") {
		return false
	}
	if _, err := netip.ParseAddr(d); err == nil {
		return false
	}
	digitsOnly := true
	for label := range strings.SplitSeq(d, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			switch {
			case r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-':
				digitsOnly = false
			case r >= '0' && r <= '9':
			default:
				return false
			}
		}
	}
	// All digits and dots: an IPv4 address in a form ParseAddr refuses
	// (leading zeros, fewer parts), which resolvers may still read as one.
	return !digitsOnly
}

// Links returns the tg://proxy and https://t.me/proxy links of a secret.
func Links(host string, port int, secret string) (tg, web string) {
	q := url.Values{"server": {host}, "port": {strconv.Itoa(port)}, "secret": {secret}}.Encode()
	return "tg://proxy?" + q, "https://t.me/proxy?" + q
}
