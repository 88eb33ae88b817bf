package backup

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/keyring"
)

// Write writes an encrypted backup of st to w, for the passphrase pk was
// derived from, and returns its manifest (with DBSHA256 set). From info it
// takes Node, Version and Created (zero: now); it sets the rest. It streams
// (see the package doc): one read transaction, no temporary file, the hash
// in the trailing sha256 entry. rand is the randomness of the stream's
// per-file nonce (nil: crypto/rand). Write does not close w; when it fails,
// what it wrote to w is no backup and must be discarded. Cancelling ctx
// stops it at its next write.
func Write(ctx context.Context, w io.Writer, st *store.Store, dataKey keyring.Key, pk keyring.PassKey, info Manifest, rand io.Reader) (*Manifest, error) {
	if st == nil {
		return nil, errors.New("writing backup: nil store")
	}
	if dataKey.IsZero() {
		return nil, errors.New("writing backup: zero data key")
	}
	m := Manifest{Format: FormatVersion, Created: info.Created, Node: info.Node, Version: info.Version,
		Schema: store.SchemaVersion, DataKey: append([]byte(nil), dataKey[:]...)}
	if m.Created.IsZero() {
		m.Created = time.Now()
	}
	m.Created = m.Created.UTC().Truncate(time.Second)
	enc, err := keyring.Encrypt(ctxWriter{ctx: ctx, w: w}, pk, rand)
	if err != nil {
		return nil, fmt.Errorf("writing backup: %w", err)
	}
	tw := tar.NewWriter(enc)
	h := sha256.New()
	err = st.DB().View(func(tx *bolt.Tx) error {
		return writeDB(tw, tx, &m, h)
	})
	if err != nil {
		return nil, fmt.Errorf("writing backup: %w", err)
	}
	m.DBSHA256 = hex.EncodeToString(h.Sum(nil))
	if err := writeEntry(tw, entrySHA256, m.Created, []byte(m.DBSHA256)); err != nil {
		return nil, fmt.Errorf("writing backup: %w", err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("writing backup: closing archive: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("writing backup: %w", err)
	}
	return &m, nil
}

// writeDB writes the manifest and the database as tx sees it. The
// manifest's size is the transaction's, known before the copy starts.
func writeDB(tw *tar.Writer, tx *bolt.Tx, m *Manifest, h hash.Hash) error {
	m.DBSize = tx.Size()
	body, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encoding manifest: %w", err)
	}
	err = writeEntry(tw, entryManifest, m.Created, body)
	clear(body) // it holds the data key
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(entryHeader(entryDB, m.Created, m.DBSize)); err != nil {
		return fmt.Errorf("writing %s header: %w", entryDB, err)
	}
	n, err := tx.WriteTo(io.MultiWriter(tw, h))
	if err != nil {
		return fmt.Errorf("copying database: %w", err)
	}
	if n != m.DBSize {
		return fmt.Errorf("copying database: wrote %d bytes of %d", n, m.DBSize)
	}
	return nil
}

func entryHeader(name string, mod time.Time, size int64) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o600, ModTime: mod}
}

func writeEntry(tw *tar.Writer, name string, mod time.Time, body []byte) error {
	if err := tw.WriteHeader(entryHeader(name, mod, int64(len(body)))); err != nil {
		return fmt.Errorf("writing %s header: %w", name, err)
	}
	if _, err := tw.Write(body); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}

// ctxWriter fails writes once ctx is done, so a long copy can be cancelled.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// ctxReader fails reads once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
