package store

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/usipipo/usipipo/store/model"
)

// bOnce maps an idempotency key to the id of what its command made or
// changed, and when: a caller that may send the same command again (a
// Telegram update re-handled after a crash) names it with a key; the repeat
// then changes nothing and the caller reads the first result back through
// OnceRef. Entries are forgotten after OnceRetention by Housekeep.
//
// A value is onceDated, then the command's Meta.At in Unix seconds (8 bytes,
// big endian), then the ref. Values written before entries had a time are
// the bare ref (an id, printable ASCII, so never starting with onceDated);
// Housekeep dates them with its own time, so they too are kept a full
// retention before they go.
var bOnce = []byte("once")

// onceDated marks a dated once value; no id starts with a control byte.
const onceDated = 0x01

// maxOnceKey bounds a key so a caller cannot grow the bucket with large ones.
const maxOnceKey = 128

// OnceRetention is how long an idempotency key is remembered. A Telegram
// update is re-delivered for at most a day and an API client retries within
// minutes; a month is far beyond any retry.
const OnceRetention = 30 * 24 * time.Hour

// once plans a command at most once per key: an empty key plans it as
// usual, a used key plans nothing (and succeeds), and a new key is recorded
// with ref and the command's time in the same transaction as its effect.
func once(v *view, m Meta, key, ref string, plan func() (mutation, error)) (mutation, error) {
	if key == "" {
		return plan()
	}
	if len(key) > maxOnceKey {
		return nil, fmt.Errorf("idempotency key longer than %d: %w", maxOnceKey, model.ErrInvalid)
	}
	if v.bucket(bOnce).Get(str(key)) != nil {
		return func(*writer) error { return nil }, nil
	}
	mut, err := plan()
	if err != nil {
		return nil, err
	}
	return func(w *writer) error {
		if err := mut(w); err != nil {
			return err
		}
		return w.tx.Bucket(bOnce).Put(str(key), onceValue(m.At, ref))
	}, nil
}

// onceValue encodes a dated once entry.
func onceValue(at time.Time, ref string) []byte {
	b := make([]byte, 9, 9+len(ref))
	b[0] = onceDated
	binary.BigEndian.PutUint64(b[1:9], uint64(at.Unix()))
	return append(b, ref...)
}

// decodeOnce reads a once value: its ref and, unless it predates dated
// entries (dated false), the time of the command that recorded it.
func decodeOnce(b []byte) (ref string, at time.Time, dated bool, err error) {
	if at, dated, err = onceTime(b); err != nil || !dated {
		return string(b), at, dated, err
	}
	return string(b[9:]), at, true, nil
}

// onceTime is decodeOnce without the ref (housekeeping reads every entry).
func onceTime(b []byte) (at time.Time, dated bool, err error) {
	if len(b) == 0 || b[0] != onceDated {
		return time.Time{}, false, nil
	}
	if len(b) < 9 {
		return time.Time{}, false, fmt.Errorf("once value of %d bytes", len(b))
	}
	return time.Unix(int64(binary.BigEndian.Uint64(b[1:9])), 0).UTC(), true, nil
}

// OnceRef returns the id recorded by the first command applied under key,
// and whether there was one.
func (s *Store) OnceRef(key string) (ref string, ok bool, err error) {
	err = s.read(func(v *view) error {
		b := v.bucket(bOnce).Get(str(key))
		if b == nil {
			return nil
		}
		var derr error
		ref, _, _, derr = decodeOnce(b)
		ok = derr == nil
		return derr
	})
	if err != nil {
		return "", false, fmt.Errorf("idempotency key: %w", err)
	}
	return ref, ok, nil
}
