package store

import (
	"bytes"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/usipipo/usipipo/store/model"
)

// kv is one index entry: the key carries the lookup order, the value is the
// record id for unique indexes and empty otherwise.
type kv struct{ k, v []byte }

// table describes how one record type is stored: its bucket, its primary key,
// its version field, and the index buckets derived from it. Indexes are pure
// functions of a record, so they can be rebuilt and compared at any time.
type table[T any] struct {
	bucket  []byte
	key     func(*T) []byte
	version func(*T) *uint64 // nil: append-only records
	indexes []index[T]
	// fill completes a decoded record with state kept outside it (usage).
	fill func(v *view, rec *T)
}

// load decodes a stored record and fills it.
func load[T any](v *view, t *table[T], b []byte) (*T, error) {
	rec := new(T)
	if err := decode(b, rec); err != nil {
		return nil, err
	}
	if t.fill != nil {
		t.fill(v, rec)
	}
	return rec, nil
}

type index[T any] struct {
	bucket  []byte
	entries func(*T) []kv
}

// view is the read side of a write transaction: commands plan against it,
// and nothing reachable from it can change the database.
type view struct{ tx *bolt.Tx }

// writer is the write side, handed only to a command's mutation after every
// check has passed.
type writer struct {
	tx *bolt.Tx
	view
}

func (v *view) bucket(name []byte) *bolt.Bucket { return v.tx.Bucket(name) }

func getRec[T any](v *view, t *table[T], key []byte) (*T, error) {
	b := v.bucket(t.bucket).Get(key)
	if b == nil {
		return nil, model.ErrNotFound
	}
	return load(v, t, b)
}

func getByID[T any](v *view, t *table[T], id string) (*T, error) {
	return getRec(v, t, []byte(id))
}

// lookup resolves a unique index entry to its record.
func lookup[T any](v *view, t *table[T], idxBucket, key []byte) (*T, error) {
	id := v.bucket(idxBucket).Get(key)
	if id == nil {
		return nil, model.ErrNotFound
	}
	return getRec(v, t, id)
}

// put writes rec, bumping its version, and updates its index entries in the
// same transaction: entries of the old record that the new one lacks are
// deleted, new or changed ones written, identical ones left alone.
func put[T any](w *writer, t *table[T], rec *T) error {
	key := t.key(rec)
	bkt := w.tx.Bucket(t.bucket)
	var prev *T
	if old := bkt.Get(key); old != nil {
		prev = new(T)
		if err := decode(old, prev); err != nil {
			return err
		}
	}
	if t.version != nil {
		*t.version(rec) = 1
		if prev != nil {
			*t.version(rec) = *t.version(prev) + 1
		}
	}
	b, err := encode(rec)
	if err != nil {
		return err
	}
	if err := bkt.Put(key, b); err != nil {
		return fmt.Errorf("writing %s record: %w", t.bucket, err)
	}
	for _, ix := range t.indexes {
		if err := moveEntries(w.tx.Bucket(ix.bucket), ix, prev, rec); err != nil {
			return err
		}
	}
	return nil
}

func moveEntries[T any](ib *bolt.Bucket, ix index[T], prev, rec *T) error {
	var old, cur []kv
	if prev != nil {
		old = ix.entries(prev)
	}
	if rec != nil { // nil: the record is being deleted
		cur = ix.entries(rec)
	}
	for _, o := range old {
		if !slices.ContainsFunc(cur, func(e kv) bool { return bytes.Equal(e.k, o.k) }) {
			if err := ib.Delete(o.k); err != nil {
				return fmt.Errorf("deleting %s entry: %w", ix.bucket, err)
			}
		}
	}
	for _, e := range cur {
		if slices.ContainsFunc(old, func(o kv) bool { return bytes.Equal(e.k, o.k) && bytes.Equal(e.v, o.v) }) {
			continue
		}
		if err := ib.Put(e.k, e.v); err != nil {
			return fmt.Errorf("writing %s entry: %w", ix.bucket, err)
		}
	}
	return nil
}

// countPrefix counts the keys of an index bucket that start with prefix.
func (v *view) countPrefix(bucket, prefix []byte) int {
	n := 0
	c := v.bucket(bucket).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		n++
	}
	return n
}

// checkTable rebuilds every index of t from its records and reports the
// first difference from what is stored.
func checkTable[T any](tx *bolt.Tx, t *table[T]) error {
	want := make([]map[string]string, len(t.indexes))
	for i := range want {
		want[i] = map[string]string{}
	}
	err := tx.Bucket(t.bucket).ForEach(func(k, b []byte) error {
		rec := new(T)
		if err := decode(b, rec); err != nil {
			return fmt.Errorf("record %q: %w", k, err)
		}
		if !bytes.Equal(t.key(rec), k) {
			return fmt.Errorf("%s: record stored under %q has key %q", t.bucket, k, t.key(rec))
		}
		for i, ix := range t.indexes {
			for _, e := range ix.entries(rec) {
				if _, dup := want[i][string(e.k)]; dup {
					return fmt.Errorf("%s: duplicate entry %q", ix.bucket, e.k)
				}
				want[i][string(e.k)] = string(e.v)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i, ix := range t.indexes {
		got := 0
		err := tx.Bucket(ix.bucket).ForEach(func(k, v []byte) error {
			got++
			w, ok := want[i][string(k)]
			if !ok {
				return fmt.Errorf("%s: stale entry %q", ix.bucket, k)
			}
			if w != string(v) {
				return fmt.Errorf("%s: entry %q is %q, want %q", ix.bucket, k, v, w)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if got != len(want[i]) {
			return fmt.Errorf("%s: %d entries, rebuilt %d", ix.bucket, got, len(want[i]))
		}
	}
	return nil
}

func userPrefix(id string) []byte { return append(str(id), sep) }

// lastParts returns the last component (the record id) of every key of an
// index bucket that starts with prefix, in key order.
func (v *view) lastParts(bucket, prefix []byte) []string {
	var out []string
	c := v.bucket(bucket).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		out = append(out, string(k[bytes.LastIndexByte(k, sep)+1:]))
	}
	return out
}
