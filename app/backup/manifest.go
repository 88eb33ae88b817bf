package backup

import (
	"crypto/sha256"
	"fmt"
	"log/slog"
	"time"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/keyring"
)

// FormatVersion is the backup layout this package writes and reads.
const FormatVersion = 1

// Entry names of the tar archive inside a backup, in order.
const (
	entryManifest = "manifest.json"
	entryDB       = "usipipo.db"
	entrySHA256   = "sha256"
)

// maxManifest bounds the manifest entry a reader accepts.
const maxManifest = 64 << 10

// Manifest is the first entry of a backup, inside the encryption. It holds
// the raw data key: do not print it (its LogValue redacts the key).
type Manifest struct {
	Format   int       `json:"format"` // FormatVersion
	Created  time.Time `json:"created"`
	Node     string    `json:"node"`
	Version  string    `json:"version"` // binary version
	Schema   uint64    `json:"schema"`  // store.SchemaVersion of the copy
	DataKey  []byte    `json:"data_key"`
	DBSize   int64     `json:"db_size"`
	DBSHA256 string    `json:"db_sha256"` // empty in the archive; set from the trailing sha256 entry
}

// LogValue describes the manifest without its data key.
func (m Manifest) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Int("format", m.Format),
		slog.Time("created", m.Created),
		slog.String("node", m.Node),
		slog.String("version", m.Version),
		slog.Uint64("schema", m.Schema),
		slog.Int64("db_size", m.DBSize),
		slog.String("db_sha256", m.DBSHA256),
	)
}

// Key returns the manifest's data key.
func (m *Manifest) Key() (keyring.Key, error) {
	var k keyring.Key
	if len(m.DataKey) != len(k) {
		return k, fmt.Errorf("manifest data key is %d bytes, want %d: %w", len(m.DataKey), len(k), ErrCorrupt)
	}
	copy(k[:], m.DataKey)
	if k.IsZero() {
		return keyring.Key{}, fmt.Errorf("manifest data key is zero: %w", ErrCorrupt)
	}
	return k, nil
}

// check validates a manifest read from an archive.
func (m *Manifest) check() error {
	if m.Format > FormatVersion {
		return fmt.Errorf("backup format %d, this binary reads %d: %w", m.Format, FormatVersion, ErrUnsupported)
	}
	if m.Format != FormatVersion {
		return fmt.Errorf("backup format %d: %w", m.Format, ErrCorrupt)
	}
	if m.Schema > store.SchemaVersion {
		return fmt.Errorf("database schema %d, this binary knows %d: %w", m.Schema, store.SchemaVersion, ErrUnsupported)
	}
	if m.Schema == 0 {
		return fmt.Errorf("manifest has no schema version: %w", ErrCorrupt)
	}
	if m.DBSize <= 0 {
		return fmt.Errorf("manifest database size %d: %w", m.DBSize, ErrCorrupt)
	}
	if _, err := m.Key(); err != nil {
		return err
	}
	if m.DBSHA256 != "" && !validHex(m.DBSHA256) {
		return fmt.Errorf("manifest hash is not hex SHA-256: %w", ErrCorrupt)
	}
	return nil
}

// validHex reports whether s is a SHA-256 in 64 lowercase hex digits.
func validHex(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
