package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Node-local telemetry: written by its producers once per interval, never
// audited, never replicated. Usage reaches the domain state separately, as
// UsageBatch commands.

// UsageSample is one credential's bytes within one hour.
type UsageSample struct {
	ID     string
	Rx, Tx uint64
}

// UsagePoint is a bucket of a usage series.
type UsagePoint struct {
	At     time.Time `json:"at"`
	Rx, Tx uint64
}

// HourlyRetention is how long hourly buckets are kept before they are
// folded into daily ones.
const HourlyRetention = 14 * 24 * time.Hour

// RecordUsage adds one interval's samples to their hourly buckets in a
// single transaction.
func (s *Store) RecordUsage(at time.Time, samples []UsageSample) error {
	hour := at.UTC().Truncate(time.Hour)
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(tmUsageHourly)
		var sumRx, sumTx uint64
		for _, smp := range samples {
			if err := addPoint(b, compose(str(smp.ID), ascTime(hour)), smp.Rx, smp.Tx); err != nil {
				return err
			}
			sumRx, sumTx = sumRx+smp.Rx, sumTx+smp.Tx
		}
		if len(samples) == 0 {
			return nil
		}
		return addPoint(b, compose(str(NodeUsageID), ascTime(hour)), sumRx, sumTx)
	})
}

func addPoint(b *bolt.Bucket, k []byte, rx, tx uint64) error {
	var v [16]byte
	if old := b.Get(k); len(old) == 16 {
		copy(v[:], old)
	}
	binary.BigEndian.PutUint64(v[:8], binary.BigEndian.Uint64(v[:8])+rx)
	binary.BigEndian.PutUint64(v[8:], binary.BigEndian.Uint64(v[8:])+tx)
	if err := b.Put(k, v[:]); err != nil {
		return fmt.Errorf("writing usage point: %w", err)
	}
	return nil
}

// CompactUsage folds hourly buckets older than HourlyRetention into daily
// buckets and returns how many hourly buckets it folded.
func (s *Store) CompactUsage(now time.Time) (int, error) {
	cutoff := ascTime(now.Add(-HourlyRetention).UTC().Truncate(24 * time.Hour))
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		hb, db := tx.Bucket(tmUsageHourly), tx.Bucket(tmUsageDaily)
		var old [][]byte
		nodeSeries := 0
		err := hb.ForEach(func(k, v []byte) error {
			i := bytes.LastIndexByte(k[:len(k)-8], sep)
			if i < 0 || len(v) != 16 || bytes.Compare(k[i+1:], cutoff) >= 0 {
				return nil
			}
			hour := time.Unix(0, int64(decodeU64(k[i+1:])^(1<<63))).UTC()
			day := compose(k[:i], ascTime(hour.Truncate(24*time.Hour)))
			if err := addPoint(db, day, binary.BigEndian.Uint64(v[:8]), binary.BigEndian.Uint64(v[8:])); err != nil {
				return err
			}
			old = append(old, append([]byte(nil), k...))
			if bytes.Equal(k[:i], str(NodeUsageID)) {
				nodeSeries++ // not a credential's: not counted
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range old {
			if err := hb.Delete(k); err != nil {
				return err
			}
		}
		n = len(old) - nodeSeries
		return nil
	})
	return n, err
}

// UsageSeries returns a credential's daily then hourly points in time order.
func (s *Store) UsageSeries(id string) ([]UsagePoint, error) {
	var out []UsagePoint
	err := s.db.View(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{tmUsageDaily, tmUsageHourly} {
			prefix := userPrefix(id)
			c := tx.Bucket(name).Cursor()
			for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
				if len(v) != 16 || len(k) != len(prefix)+8 {
					continue
				}
				at := time.Unix(0, int64(decodeU64(k[len(prefix):])^(1<<63))).UTC()
				out = append(out, UsagePoint{At: at, Rx: binary.BigEndian.Uint64(v[:8]), Tx: binary.BigEndian.Uint64(v[8:])})
			}
		}
		return nil
	})
	return out, err
}

// Telemetry buckets addressed by name, for small node-local values:
// conversation state, delivery receipts, last-used times, checkpoints.
type Telemetry string

// Telemetry kinds.
const (
	Conversations Telemetry = "conversations"
	Receipts      Telemetry = "receipts"
	LastUsed      Telemetry = "last_used"
	Checkpoints   Telemetry = "checkpoints"
	// Updates holds Telegram updates from the moment they are received until
	// they are processed, then a receipt of each processed update_id.
	Updates Telemetry = "updates"
	// APIRefresh holds the REST API's refresh-token families and the
	// SHA-256 of their tokens; APIIdempotency its stored responses to
	// creating calls (sealed by the API). Node-local: a login and a retried
	// request belong to the node that served them.
	APIRefresh     Telemetry = "api_refresh"
	APIIdempotency Telemetry = "api_idempotency"
	// PanelSessions holds the web panel's logged-in sessions, keyed by the
	// SHA-256 of the cookie (never the cookie itself), so a restart does
	// not log admins out.
	PanelSessions Telemetry = "panel_sessions"
)

func (t Telemetry) bucket() ([]byte, error) {
	switch t {
	case Conversations:
		return tmConv, nil
	case Receipts:
		return tmReceipts, nil
	case LastUsed:
		return tmLastUsed, nil
	case Checkpoints:
		return tmState, nil
	case Updates:
		return tmUpdates, nil
	case APIRefresh:
		return tmAPIRefresh, nil
	case APIIdempotency:
		return tmAPIIdem, nil
	case PanelSessions:
		return tmPanelSess, nil
	}
	return nil, fmt.Errorf("telemetry kind %q unknown", t)
}

// PutTelemetry writes several values of one kind in one transaction; a nil
// value deletes.
func (s *Store) PutTelemetry(t Telemetry, values map[string][]byte) error {
	name, err := t.bucket()
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(name) // kinds added after a data dir was made
		if err != nil {
			return fmt.Errorf("creating %s: %w", t, err)
		}
		for k, v := range values {
			var err error
			if v == nil {
				err = b.Delete([]byte(k))
			} else {
				err = b.Put([]byte(k), v)
			}
			if err != nil {
				return fmt.Errorf("writing %s: %w", t, err)
			}
		}
		return nil
	})
}

// PutTelemetryBatch is PutTelemetry for many concurrent callers: their
// writes share transactions (bbolt's Batch), so each still returns only
// after its values are committed and fsynced, without one fsync each.
func (s *Store) PutTelemetryBatch(t Telemetry, values map[string][]byte) error {
	name, err := t.bucket()
	if err != nil {
		return err
	}
	// Batch may run fn more than once (after another caller's failure);
	// the puts are idempotent.
	return s.db.Batch(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(name)
		if err != nil {
			return fmt.Errorf("creating %s: %w", t, err)
		}
		for k, v := range values {
			if v == nil {
				err = b.Delete([]byte(k))
			} else {
				err = b.Put([]byte(k), v)
			}
			if err != nil {
				return fmt.Errorf("writing %s: %w", t, err)
			}
		}
		return nil
	})
}

// GetTelemetry reads one value; nil when absent.
func (s *Store) GetTelemetry(t Telemetry, key string) ([]byte, error) {
	name, err := t.bucket()
	if err != nil {
		return nil, err
	}
	var out []byte
	err = s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(name)
		if b == nil {
			return nil
		}
		if v := b.Get([]byte(key)); v != nil {
			out = append([]byte(nil), v...)
		}
		return nil
	})
	return out, err
}

// ScanTelemetry calls fn for the values of one kind whose keys start with
// prefix, in key order, inside one read transaction, until fn returns false.
// fn must not keep k or v.
func (s *Store) ScanTelemetry(t Telemetry, prefix string, fn func(k, v []byte) bool) error {
	name, err := t.bucket()
	if err != nil {
		return err
	}
	return s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(name)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		p := []byte(prefix)
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			if !fn(k, v) {
				return nil
			}
		}
		return nil
	})
}
