package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// SchemaVersion is the layout this binary writes. Older files are migrated
// forward on open; a newer file is refused, so an old binary never damages
// data it does not understand.
const SchemaVersion = 2

// ErrSchemaTooNew means the file was written by a newer usipipo.
var ErrSchemaTooNew = errors.New("database was written by a newer usipipo; upgrade the binary")

var keySchema = []byte("schema_version")

// migrations[i] moves a file from version i+1 to i+2.
func migrations() []func(tx *bolt.Tx) error {
	return []func(tx *bolt.Tx) error{migrate1to2}
}

func (s *Store) migrate() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bMeta)
		if err != nil {
			return fmt.Errorf("creating meta bucket: %w", err)
		}
		v := schemaOf(meta)
		if v == 0 { // a new file
			if err := createBuckets(tx); err != nil {
				return err
			}
			return meta.Put(keySchema, u64(SchemaVersion))
		}
		if v > SchemaVersion {
			return fmt.Errorf("schema %d > %d: %w", v, SchemaVersion, ErrSchemaTooNew)
		}
		for ; v < SchemaVersion; v++ {
			if err := migrations()[v-1](tx); err != nil {
				return fmt.Errorf("migrating schema %d to %d: %w", v, v+1, err)
			}
			s.log.Info("schema_migrated", "from", v, "to", v+1)
		}
		if err := createBuckets(tx); err != nil {
			return err
		}
		return tx.Bucket(bMeta).Put(keySchema, u64(SchemaVersion))
	})
}

func (s *Store) checkSchema() error {
	return s.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bMeta)
		if meta == nil {
			return fmt.Errorf("not a usipipo database (no meta bucket)")
		}
		if v := schemaOf(meta); v != SchemaVersion {
			return fmt.Errorf("schema version %d, this binary reads %d offline: start the node once to migrate", v, SchemaVersion)
		}
		return nil
	})
}

func schemaOf(meta *bolt.Bucket) uint64 {
	b := meta.Get(keySchema)
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func createBuckets(tx *bolt.Tx) error {
	all := append(append(recordBuckets(), indexBuckets()...), telemetryBuckets()...)
	for _, name := range all {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("creating bucket %s: %w", name, err)
		}
	}
	return nil
}

// migrate1to2: schema 1 kept a key's expiry as a top-level "expires_at",
// had no expiry, address, cap or blocked-user index, and an active-key index
// without versions. Schema 2 keeps the expiry in limits.expires_at and
// (re)builds those indexes from the records.
func migrate1to2(tx *bolt.Tx) error {
	for _, b := range [][]byte{iKeysExpiry, iKeysAddr, iKeysCap} {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	kb := tx.Bucket(bKeys)
	if kb == nil {
		return nil
	}
	type updated struct{ k, v []byte }
	var out []updated
	err := kb.ForEach(func(k, v []byte) error {
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(v, &raw); err != nil {
			return fmt.Errorf("key %s: %w", k, err)
		}
		exp, ok := raw["expires_at"]
		if !ok {
			return nil
		}
		var limits map[string]json.RawMessage
		if l, ok := raw["limits"]; ok {
			if err := json.Unmarshal(l, &limits); err != nil {
				return fmt.Errorf("key %s limits: %w", k, err)
			}
		}
		if limits == nil {
			limits = map[string]json.RawMessage{}
		}
		limits["expires_at"] = exp
		delete(raw, "expires_at")
		lb, err := json.Marshal(limits)
		if err != nil {
			return err
		}
		raw["limits"] = lb
		nb, err := json.Marshal(raw)
		if err != nil {
			return err
		}
		out = append(out, updated{append([]byte(nil), k...), nb})
		return nil
	})
	if err != nil {
		return err
	}
	for _, u := range out {
		if err := kb.Put(u.k, u.v); err != nil {
			return err
		}
	}
	// Build the new indexes from the migrated records.
	for _, ix := range [][]byte{iKeysActive, iKeysExpiry, iKeysAddr, iKeysCap} {
		if err := rebuildIndex(tx, keys, ix); err != nil {
			return err
		}
	}
	for _, b := range [][]byte{iUsersBlocked, iProxiesCap} {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	return rebuildIndex(tx, users, iUsersBlocked)
}

func rebuildIndex[T any](tx *bolt.Tx, t *table[T], bucket []byte) error {
	var ix *index[T]
	for i := range t.indexes {
		if string(t.indexes[i].bucket) == string(bucket) {
			ix = &t.indexes[i]
		}
	}
	if ix == nil {
		return fmt.Errorf("no index %s on %s", bucket, t.bucket)
	}
	ib := tx.Bucket(bucket)
	return tx.Bucket(t.bucket).ForEach(func(_, v []byte) error {
		rec := new(T)
		if err := decode(v, rec); err != nil {
			return err
		}
		for _, e := range ix.entries(rec) {
			if err := ib.Put(e.k, e.v); err != nil {
				return err
			}
		}
		return nil
	})
}
