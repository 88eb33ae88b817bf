package store

import (
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// TelemetryTx reads (and, in UpdateTelemetry, writes) one telemetry kind
// inside one transaction, so a producer can make a write depend on what is
// stored — e.g. not persist an update whose receipt is already there —
// without a race between its read and its write.
type TelemetryTx struct {
	b    *bolt.Bucket // nil: the kind has no bucket yet (read-only view)
	kind Telemetry
}

// Get returns a copy of one value; nil when absent.
func (t TelemetryTx) Get(key string) []byte {
	if t.b == nil {
		return nil
	}
	if v := t.b.Get([]byte(key)); v != nil {
		return append([]byte(nil), v...)
	}
	return nil
}

// Has reports whether key holds a value.
func (t TelemetryTx) Has(key string) bool {
	return t.b != nil && t.b.Get([]byte(key)) != nil
}

// Put stores val under key; a nil val deletes it. It fails in a view.
func (t TelemetryTx) Put(key string, val []byte) error {
	if t.b == nil || !t.b.Writable() {
		return fmt.Errorf("writing %s: %w", t.kind, errTelemetryReadOnly)
	}
	var err error
	if val == nil {
		err = t.b.Delete([]byte(key))
	} else {
		err = t.b.Put([]byte(key), val)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", t.kind, err)
	}
	return nil
}

var errTelemetryReadOnly = errors.New("read-only telemetry transaction")

// ViewTelemetry calls fn with one read transaction on a telemetry kind.
func (s *Store) ViewTelemetry(t Telemetry, fn func(TelemetryTx) error) error {
	name, err := t.bucket()
	if err != nil {
		return err
	}
	return s.db.View(func(tx *bolt.Tx) error {
		return fn(TelemetryTx{b: tx.Bucket(name), kind: t})
	})
}

// UpdateTelemetry calls fn inside one write transaction on a telemetry
// kind and returns once it is committed and fsynced (or fn's error, with
// nothing written).
func (s *Store) UpdateTelemetry(t Telemetry, fn func(TelemetryTx) error) error {
	name, err := t.bucket()
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(name)
		if err != nil {
			return fmt.Errorf("creating %s: %w", t, err)
		}
		return fn(TelemetryTx{b: b, kind: t})
	})
}
