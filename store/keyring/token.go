package keyring

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"fmt"
	"io"
	"strings"
)

// base32 alphabet of RFC 4648 in lower case: no 0, 1, 8 or 9 to mistake for
// o, l, B or g.
const b32Alphabet = "abcdefghijklmnopqrstuvwxyz234567"

var b32 = base32.NewEncoding(b32Alphabet).WithPadding(base32.NoPadding)

const (
	// TokenPrefix starts every API token.
	TokenPrefix = "usp_"
	// TokenIDLen and TokenSecretLen are the lengths, in base32 characters,
	// of a token's id (80 bits, public) and secret (160 bits).
	TokenIDLen     = 16
	TokenSecretLen = 32
	// TokenLen is the length of a whole token.
	TokenLen = len(TokenPrefix) + TokenIDLen + 1 + TokenSecretLen
)

// NewAPIToken makes an API token "usp_<id>_<secret>" from r (nil:
// crypto/rand). The store keeps id (the lookup key) and HashSecret(secret);
// token is shown to the user once and never stored.
func NewAPIToken(r io.Reader) (id, secret, token string, err error) {
	var raw [(TokenIDLen + TokenSecretLen) * 5 / 8]byte // 10 + 20 bytes
	if err := readRandom(r, raw[:]); err != nil {
		return "", "", "", fmt.Errorf("making API token: %w", err)
	}
	id = b32.EncodeToString(raw[:TokenIDLen*5/8])
	secret = b32.EncodeToString(raw[TokenIDLen*5/8:])
	clear(raw[:])
	return id, secret, TokenPrefix + id + "_" + secret, nil
}

// ParseAPIToken splits a token into id and secret. Anything but exactly
// "usp_", 16 and then 32 lowercase base32 characters joined by "_" is
// ErrBadToken; the error never repeats the token.
func ParseAPIToken(token string) (id, secret string, err error) {
	if len(token) != TokenLen || !strings.HasPrefix(token, TokenPrefix) {
		return "", "", ErrBadToken
	}
	rest := token[len(TokenPrefix):]
	if rest[TokenIDLen] != '_' {
		return "", "", ErrBadToken
	}
	id, secret = rest[:TokenIDLen], rest[TokenIDLen+1:]
	if !isB32(id) || !isB32(secret) {
		return "", "", ErrBadToken
	}
	return id, secret, nil
}

func isB32(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

// HashSecret is what the store keeps of an API token's secret: its SHA-256.
// The secret has 160 bits of entropy, so no slow hash is needed.
func HashSecret(secret string) [32]byte { return sha256.Sum256([]byte(secret)) }

// VerifySecret reports, in constant time, whether secret hashes to hash.
func VerifySecret(hash [32]byte, secret string) bool {
	h := HashSecret(secret)
	return subtle.ConstantTimeCompare(h[:], hash[:]) == 1
}

const (
	passwordGroups   = 5 // 5×4 characters × 5 bits = 100 bits
	passphraseGroups = 7 // 7×4 characters × 5 bits = 140 bits
	groupLen         = 4
)

// NewPassword makes a one-time admin password such as
// "k7qa-m2xe-pd4w-zz6c-ht3n": 20 lowercase base32 characters in groups of
// four, 100 bits.
func NewPassword(r io.Reader) (string, error) { return randomGroups(r, passwordGroups) }

// NewPassphrase makes a backup passphrase in the same style as NewPassword
// with seven groups: 28 characters, 140 bits.
func NewPassphrase(r io.Reader) (string, error) { return randomGroups(r, passphraseGroups) }

// randomGroups draws one byte per character and keeps its low 5 bits, which
// is uniform because 256 is a multiple of 32.
func randomGroups(r io.Reader, groups int) (string, error) {
	raw := make([]byte, groups*groupLen)
	if err := readRandom(r, raw); err != nil {
		return "", fmt.Errorf("making password: %w", err)
	}
	var sb strings.Builder
	sb.Grow(groups*(groupLen+1) - 1)
	for i, b := range raw {
		if i > 0 && i%groupLen == 0 {
			sb.WriteByte('-')
		}
		sb.WriteByte(b32Alphabet[b&31])
	}
	clear(raw)
	return sb.String(), nil
}
