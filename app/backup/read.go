package backup

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/keyring"
)

// Read decrypts a backup with the operator passphrase and checks it: it
// refuses what is not a usipipo backup (ErrNotBackup), a wrong passphrase
// (ErrBadPassphrase), a truncated or altered stream, a malformed archive or
// manifest, or a hash mismatch (ErrCorrupt), and a backup from a newer
// usipipo (ErrUnsupported). It writes the database to a temporary file in dir
// (which must exist), opens it with store.Open — migrating an older schema
// forward — and runs Check, then returns the manifest and that file's path
// for the caller to Install or rename into place. On any error nothing is
// left in dir. The passphrase costs one scrypt run, whose parameters the
// keyring bounds (at most 2^20 iterations and 1 GiB).
func Read(ctx context.Context, r io.Reader, passphrase []byte, dir string) (*Manifest, string, error) {
	plain, err := keyring.Decrypt(ctxReader{ctx: ctx, r: r}, passphrase)
	if err != nil {
		return nil, "", fmt.Errorf("reading backup: %w", classify(err))
	}
	return readContent(ctx, plain, dir)
}

// ReadWithPassKey is Read for the node's own backups, with the PassKey it
// keeps instead of the passphrase (no scrypt run).
func ReadWithPassKey(ctx context.Context, r io.Reader, pk keyring.PassKey, dir string) (*Manifest, string, error) {
	plain, err := keyring.DecryptPassKey(ctxReader{ctx: ctx, r: r}, pk)
	if err != nil {
		return nil, "", fmt.Errorf("reading backup: %w", classify(err))
	}
	return readContent(ctx, plain, dir)
}

// kindError tags an error with one of this package's sentinels while keeping
// its own message and chain.
type kindError struct{ kind, err error }

func (e kindError) Error() string   { return e.err.Error() }
func (e kindError) Unwrap() []error { return []error{e.kind, e.err} }

func corrupt(format string, args ...any) error {
	return kindError{ErrCorrupt, fmt.Errorf(format, args...)}
}

// classify maps keyring's errors to this package's; others (I/O, context)
// pass unchanged.
func classify(err error) error {
	switch {
	case errors.Is(err, keyring.ErrNotBackup):
		return kindError{ErrNotBackup, err}
	case errors.Is(err, keyring.ErrBadPassphrase):
		return kindError{ErrBadPassphrase, err}
	case errors.Is(err, keyring.ErrCorrupt), errors.Is(err, keyring.ErrTruncated):
		return kindError{ErrCorrupt, err}
	}
	return err
}

// srcReader remembers the last error of the decrypted stream, so a failure
// the tar reader reports can be told apart: the source's own (tampering,
// truncation, I/O, cancellation) or a malformed archive inside a sound
// stream.
type srcReader struct {
	r   io.Reader
	err error
}

func (s *srcReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

func (s *srcReader) fail(what string, err error) error {
	if s.err != nil {
		return fmt.Errorf("reading backup: %s: %w", what, classify(s.err))
	}
	return fmt.Errorf("reading backup: %s: %w", what, kindError{ErrCorrupt, err})
}

// readContent parses and verifies the decrypted archive (see the package
// doc for its layout). It is separate from the decryption so it can be
// fuzzed.
func readContent(ctx context.Context, plain io.Reader, dir string) (*Manifest, string, error) {
	src := &srcReader{r: ctxReader{ctx: ctx, r: plain}}
	tr := tar.NewReader(src)
	m, err := readManifest(tr, src)
	if err != nil {
		return nil, "", err
	}
	path, err := readDB(ctx, tr, src, m, dir)
	if err != nil {
		return nil, "", err
	}
	return m, path, nil
}

// nextEntry reads the next header and checks it is the regular file name.
func nextEntry(tr *tar.Reader, src *srcReader, name string) (*tar.Header, error) {
	hdr, err := tr.Next()
	if err != nil {
		return nil, src.fail("expecting "+name, err)
	}
	if hdr.Name != name || hdr.Typeflag != tar.TypeReg || hdr.Size < 0 {
		return nil, fmt.Errorf("reading backup: found %q where %s belongs: %w", hdr.Name, name, ErrCorrupt)
	}
	// A sparse entry would make the tar reader invent its holes: a few
	// bytes could claim any size.
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return nil, fmt.Errorf("reading backup: %s is a sparse file: %w", name, ErrCorrupt)
		}
	}
	return hdr, nil
}

func readManifest(tr *tar.Reader, src *srcReader) (*Manifest, error) {
	hdr, err := nextEntry(tr, src, entryManifest)
	if err != nil {
		return nil, err
	}
	if hdr.Size > maxManifest {
		return nil, fmt.Errorf("reading backup: manifest of %d bytes: %w", hdr.Size, ErrCorrupt)
	}
	body, err := io.ReadAll(tr)
	defer clear(body) // it holds the data key
	if err != nil {
		return nil, src.fail("manifest", err)
	}
	m := new(Manifest)
	if err := json.Unmarshal(body, m); err != nil {
		return nil, fmt.Errorf("reading backup: manifest: %w", kindError{ErrCorrupt, err})
	}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("reading backup: %w", err)
	}
	return m, nil
}

// readDB copies the database entry into a temporary file in dir, checks it
// against the trailing hash and the end of the stream, and verifies it with
// the store. It removes the file on any error.
func readDB(ctx context.Context, tr *tar.Reader, src *srcReader, m *Manifest, dir string) (path string, err error) {
	hdr, err := nextEntry(tr, src, entryDB)
	if err != nil {
		return "", err
	}
	if hdr.Size != m.DBSize {
		return "", corrupt("reading backup: database entry is %d bytes, manifest says %d", hdr.Size, m.DBSize)
	}
	f, err := os.CreateTemp(dir, ".usipipo-restore-*.db")
	if err != nil {
		return "", fmt.Errorf("reading backup: %w", err)
	}
	name := f.Name()
	defer func() {
		if f != nil {
			f.Close()
		}
		if err != nil {
			os.Remove(name)
			path = ""
		}
	}()
	h := sha256.New()
	if _, err := io.Copy(f, io.TeeReader(tr, h)); err != nil {
		if src.err != nil || !isWriteErr(err) {
			return "", src.fail("database", err)
		}
		return "", fmt.Errorf("reading backup: writing %s: %w", name, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if err := readTrailer(tr, src, m, sum); err != nil {
		return "", err
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("reading backup: syncing %s: %w", name, err)
	}
	cerr := f.Close()
	f = nil
	if cerr != nil {
		return "", fmt.Errorf("reading backup: closing %s: %w", name, cerr)
	}
	if err := ctx.Err(); err != nil {
		return name, err
	}
	if err := verifyDB(name); err != nil {
		return name, err
	}
	m.DBSHA256 = sum
	return name, nil
}

// isWriteErr reports whether io.Copy's error is the destination's: an
// *os.PathError from the file (the tar reader's errors are never that).
func isWriteErr(err error) bool {
	var pe *os.PathError
	return errors.As(err, &pe)
}

// readTrailer checks the sha256 entry against sum, that nothing follows it,
// and that the decrypted stream ends cleanly: only then is every chunk
// authenticated, the final one included.
func readTrailer(tr *tar.Reader, src *srcReader, m *Manifest, sum string) error {
	hdr, err := nextEntry(tr, src, entrySHA256)
	if err != nil {
		return err
	}
	if hdr.Size != 2*sha256.Size {
		return corrupt("reading backup: sha256 entry of %d bytes", hdr.Size)
	}
	got := make([]byte, hdr.Size)
	if _, err := io.ReadFull(tr, got); err != nil {
		return src.fail("sha256", err)
	}
	if !validHex(string(got)) {
		return corrupt("reading backup: sha256 entry is not hex")
	}
	if string(got) != sum || (m.DBSHA256 != "" && m.DBSHA256 != sum) {
		return corrupt("reading backup: database SHA-256 %s, backup says %s", sum, got)
	}
	if hdr, err := tr.Next(); err != io.EOF {
		if err != nil {
			return src.fail("end of archive", err)
		}
		return corrupt("reading backup: unexpected entry %q after sha256", hdr.Name)
	}
	var one [1]byte
	n, err := io.ReadFull(src, one[:])
	switch {
	case n > 0:
		return corrupt("reading backup: data after the end of the archive")
	case err != io.EOF:
		return src.fail("end of stream", err)
	}
	return nil
}

// verifyDB opens the copy as a store (migrating it forward) and checks its
// pages and indexes.
func verifyDB(path string) error {
	st, err := store.Open(store.Options{Path: path})
	if errors.Is(err, store.ErrSchemaTooNew) {
		return fmt.Errorf("reading backup: %w", kindError{ErrUnsupported, err})
	}
	if err != nil {
		return fmt.Errorf("reading backup: opening the restored database: %w", kindError{ErrCorrupt, err})
	}
	cerr := st.Check()
	if err := st.Close(); err != nil && cerr == nil {
		return fmt.Errorf("reading backup: closing the restored database: %w", err)
	}
	if cerr != nil {
		return fmt.Errorf("reading backup: restored database fails its check: %w", kindError{ErrCorrupt, cerr})
	}
	return nil
}
