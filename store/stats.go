package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/usipipo/usipipo/store/model"
)

// Reads for the dashboard's statistics. Record ids start with their
// creation time (model.NewID), so "created since t" is a Seek, not a scan.

// NodeUsageID is the series under which RecordUsage also sums every
// credential's bytes: traffic per day without walking every credential's
// buckets. It sorts before every record id, so it can never be one.
const NodeUsageID = "*"

// idFloor is the smallest id a record created at t can have.
func idFloor(t time.Time) []byte {
	id, err := model.NewID(t, zeroReader{})
	if err != nil { // a zero reader never fails
		panic(err)
	}
	return str(id)
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// IDTime is the creation time encoded in a record id (millisecond
// precision); false for a string that is not an id.
func IDTime(id string) (time.Time, bool) {
	if !model.ValidID(id) {
		return time.Time{}, false
	}
	var ms uint64
	// The first digit carries 3 bits, the next nine 45: the 48 bits of
	// milliseconds.
	for i := 0; i < 10; i++ {
		ms = ms<<5 | uint64(crockfordValue(id[i]))
	}
	return time.UnixMilli(int64(ms)).UTC(), true
}

func crockfordValue(c byte) byte {
	const alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
	return byte(strings.IndexByte(alphabet, c))
}

// CountUsers counts user records by their keys alone (no decoding).
func (s *Store) CountUsers() (int, error) {
	n := 0
	err := s.read(func(v *view) error {
		c := v.bucket(bUsers).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			n++
		}
		return nil
	})
	return n, err
}

// EachUserSince calls fn with the id and creation time of every user
// created at or after t, oldest first.
func (s *Store) EachUserSince(t time.Time, fn func(id string, created time.Time) error) error {
	return s.read(func(v *view) error {
		c := v.bucket(bUsers).Cursor()
		for k, _ := c.Seek(idFloor(t)); k != nil; k, _ = c.Next() {
			at, ok := IDTime(string(k))
			if !ok {
				continue
			}
			if err := fn(string(k), at); err != nil {
				return err
			}
		}
		return nil
	})
}

// EachPaymentSince calls fn for every payment created at or after t, in
// creation order, inside one read transaction.
func (s *Store) EachPaymentSince(t time.Time, fn func(*model.Payment) error) error {
	return s.read(func(v *view) error {
		c := v.bucket(bPayments).Cursor()
		for k, b := c.Seek(idFloor(t)); k != nil; k, b = c.Next() {
			p, err := load(v, payments, b)
			if err != nil {
				return fmt.Errorf("payment %s: %w", k, err)
			}
			if err := fn(p); err != nil {
				return err
			}
		}
		return nil
	})
}

// NodeUsageSince returns the node's summed traffic points (daily, then
// hourly) from t on.
func (s *Store) NodeUsageSince(t time.Time) ([]UsagePoint, error) {
	var out []UsagePoint
	err := s.db.View(func(tx *bolt.Tx) error {
		prefix := userPrefix(NodeUsageID)
		for _, name := range [][]byte{tmUsageDaily, tmUsageHourly} {
			c := tx.Bucket(name).Cursor()
			for k, v := c.Seek(append(append([]byte(nil), prefix...), ascTime(t.Truncate(24*time.Hour))...)); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
				if len(v) != 16 || len(k) != len(prefix)+8 {
					continue
				}
				out = append(out, point(k[len(prefix):], v))
			}
		}
		return nil
	})
	return out, err
}

func point(k, v []byte) UsagePoint {
	return UsagePoint{At: time.Unix(0, int64(decodeU64(k)^(1<<63))).UTC(),
		Rx: binary.BigEndian.Uint64(v[:8]), Tx: binary.BigEndian.Uint64(v[8:])}
}
