package keyring

import (
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"io"
	"log/slog"
)

// Key is a 256-bit symmetric key. It formats and logs as
// "keyring.Key(redacted)" so it cannot leak through fmt or slog by accident.
type Key [32]byte

// GenerateKey reads a fresh key from r (nil: crypto/rand.Reader).
func GenerateKey(r io.Reader) (Key, error) {
	var k Key
	if err := readRandom(r, k[:]); err != nil {
		return Key{}, fmt.Errorf("generating key: %w", err)
	}
	return k, nil
}

// IsZero reports whether k is all zero bytes (an unset key).
func (k Key) IsZero() bool {
	var z Key
	return subtle.ConstantTimeCompare(k[:], z[:]) == 1
}

// Equal compares two keys in constant time.
func (k Key) Equal(o Key) bool { return subtle.ConstantTimeCompare(k[:], o[:]) == 1 }

const redacted = "keyring.Key(redacted)"

// String redacts the key.
func (Key) String() string { return redacted }

// GoString redacts the key.
func (Key) GoString() string { return redacted }

// Format redacts the key for every verb (%x included).
func (Key) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// LogValue redacts the key in slog output.
func (Key) LogValue() slog.Value { return slog.StringValue(redacted) }

// readRandom fills b from r, or from crypto/rand when r is nil.
func readRandom(r io.Reader, b []byte) error {
	if r == nil {
		r = rand.Reader
	}
	if _, err := io.ReadFull(r, b); err != nil {
		return fmt.Errorf("reading randomness: %w", err)
	}
	return nil
}
