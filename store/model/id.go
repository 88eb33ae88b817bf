package model

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// crockford is the Crockford base32 alphabet: lower case, no i l o u, so ids
// are safe to read aloud and sort in creation order as plain strings.
const crockford = "0123456789abcdefghjkmnpqrstvwxyz"

// IDLen is the length of every record id: 10 characters of millisecond time
// and 16 characters of randomness (80 bits).
const IDLen = 26

// NewID returns a time-sortable id (ULID layout) for a record created at t.
// Ids are decided before a command is applied, so apply never reads the
// clock or the random source.
func NewID(t time.Time, r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	var b [16]byte
	ms := uint64(t.UnixMilli())
	binary.BigEndian.PutUint64(b[:8], ms<<16)
	if _, err := io.ReadFull(r, b[6:]); err != nil {
		return "", fmt.Errorf("reading random id bytes: %w", err)
	}
	return encodeID(b), nil
}

func encodeID(b [16]byte) string {
	hi := binary.BigEndian.Uint64(b[:8])
	lo := binary.BigEndian.Uint64(b[8:])
	var out [IDLen]byte
	// 128 bits into 26 base32 digits: the first digit carries the top 3 bits.
	for i := IDLen - 1; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}

// ValidID reports whether s has the shape of a record id. It is the check
// every adapter applies to ids it receives before they reach the store.
func ValidID(s string) bool {
	if len(s) != IDLen || s[0] > '7' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z') || c == 'i' || c == 'l' || c == 'o' || c == 'u' {
			return false
		}
	}
	return true
}
