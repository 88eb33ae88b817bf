package store

import (
	"errors"
	"fmt"
	"io"

	bolt "go.etcd.io/bbolt"
)

// Check verifies the file's page structure (bbolt's consistency check) and
// that every index equals the index rebuilt from its records.
func (s *Store) Check() error {
	// A writable transaction, rolled back: bbolt's page check compares the
	// transaction's pages with the live freelist, which a writer committing
	// alongside a read transaction changes, so a check must hold off writers
	// to be exact.
	// (A read-only store has no writers to hold off.)
	tx, err := s.db.Begin(!s.db.IsReadOnly())
	if err != nil {
		return fmt.Errorf("page check: %w", err)
	}
	defer tx.Rollback()
	var errs []error
	for err := range tx.Check() {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("page check: %w", errors.Join(errs...))
	}
	return checkIndexes(tx)
}

// CheckIndexes compares every index with its rebuild from the records, and
// checks the keyed records that have no table (checkBookkeeping).
func (s *Store) CheckIndexes() error {
	return s.db.View(checkIndexes)
}

func checkIndexes(tx *bolt.Tx) error {
	for _, check := range tableChecks() {
		if err := check(tx); err != nil {
			return fmt.Errorf("index check: %w", err)
		}
	}
	if err := checkBookkeeping(tx); err != nil {
		return fmt.Errorf("record check: %w", err)
	}
	return nil
}

// Snapshot writes a consistent copy of the whole file, taken in one read
// transaction while writers go on (a hot backup).
func (s *Store) Snapshot(w io.Writer) (int64, error) {
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("snapshot: %w", err)
	}
	return n, nil
}

// Meta values kept beside the schema version: the wrapped data key and the
// sealed backup pass key.
var (
	MetaDataKey = []byte("data_key_wrapped")
	MetaPassKey = []byte("backup_passkey_sealed")
	MetaNode    = []byte("node_name")
)

// GetMeta reads a meta value; nil when absent.
func (s *Store) GetMeta(key []byte) ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bMeta).Get(key); v != nil {
			out = append([]byte(nil), v...)
		}
		return nil
	})
	return out, err
}

// PutMeta writes meta values in one transaction. Meta is node-level
// configuration (keys, node name), not domain state.
func (s *Store) PutMeta(kv map[string][]byte) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bMeta)
		for k, v := range kv {
			if err := b.Put([]byte(k), v); err != nil {
				return fmt.Errorf("writing meta %s: %w", k, err)
			}
		}
		return nil
	})
}
