package cache

import (
	"encoding/binary"

	"github.com/cespare/xxhash/v2"
)

// Key names a derived value by record kind, id AND record version, plus an
// optional variant for several renderings of one record.
//
// A write bumps the record version, so a reader can never be handed a value
// derived from an older version than the one it read: the older value lives
// under a different Key. Kind should be one of a small set of constants (it
// is a metrics label).
type Key struct {
	// Kind is the record kind, e.g. "key" or "user".
	Kind string
	// ID is the record id.
	ID string
	// Version is the record version the value is derived from.
	Version uint64
	// Variant tells apart renderings of one record, e.g. "wg-conf", "qr-png".
	Variant string
}

// hash digests k for ristretto. Each field is hashed on its own and the
// digests are hashed together, so field boundaries cannot shift ("ab","c" vs
// "a","bc") and no allocation happens. Collisions are still possible and are
// caught by comparing the stored Key on Get.
func (k Key) hash() uint64 {
	var b [32]byte
	binary.LittleEndian.PutUint64(b[0:], xxhash.Sum64String(k.Kind))
	binary.LittleEndian.PutUint64(b[8:], xxhash.Sum64String(k.ID))
	binary.LittleEndian.PutUint64(b[16:], k.Version)
	binary.LittleEndian.PutUint64(b[24:], xxhash.Sum64String(k.Variant))
	return xxhash.Sum64(b[:])
}

// size is the memory the Key's strings hold, charged to the entry's cost.
func (k Key) size() int64 {
	return int64(len(k.Kind) + len(k.ID) + len(k.Variant))
}
