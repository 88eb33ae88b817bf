package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// Records are JSON: readable in a hex dump, stable across Go versions, and
// map keys are sorted, which apply's determinism relies on.
func encode(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding %T: %w", v, err)
	}
	return b, nil
}

func decode(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decoding %T: %w", v, err)
	}
	return nil
}

// sep joins index key parts. Ids and codes never contain it.
const sep = 0x00

func compose(parts ...[]byte) []byte {
	n := len(parts)
	for _, p := range parts {
		n += len(p)
	}
	out := make([]byte, 0, n)
	for i, p := range parts {
		if i > 0 {
			out = append(out, sep)
		}
		out = append(out, p...)
	}
	return out
}

func str(s string) []byte { return []byte(s) }

func u64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

func i64(v int64) []byte { return u64(uint64(v) ^ (1 << 63)) }

// ascTime sorts older times first; descTime newer first. Times in index keys
// are never zero (UnixNano is undefined far from 1970).
func ascTime(t time.Time) []byte { return i64(t.UnixNano()) }

func descTime(t time.Time) []byte { return u64(math.MaxUint64 ^ (uint64(t.UnixNano()) ^ (1 << 63))) }

func decodeU64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}
