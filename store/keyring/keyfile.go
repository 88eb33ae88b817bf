package keyring

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// NodeKeyFile is the node key's file name, in the data directory or in the
// systemd credentials directory ($CREDENTIALS_DIRECTORY, LoadCredential=).
const NodeKeyFile = "node.key"

// maxKeyFileSize bounds what LoadKeyFile reads: 64 hex digits and a newline
// (or CRLF) at most; anything longer is refused as the wrong size.
const maxKeyFileSize = 66

// WriteKeyFile writes k to path as 64 lowercase hex digits and a newline,
// mode 0600. The file appears atomically and complete: it is written and
// fsynced under a temporary name in the same directory, then linked into
// place (which never replaces an existing file), and the directory is
// fsynced. It returns ErrExists if path already exists.
func WriteKeyFile(path string, k Key) error {
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("writing %s: %w", path, ErrExists)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // a no-op once it is renamed away

	var buf [2*len(k) + 1]byte
	hex.Encode(buf[:], k[:])
	buf[len(buf)-1] = '\n'
	err = tmp.Chmod(0o600) // CreateTemp already uses 0600; be explicit
	if err == nil {
		_, err = tmp.Write(buf[:])
	}
	if err == nil {
		err = tmp.Sync()
	}
	clear(buf[:])
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := publishNoReplace(tmpName, path); err != nil {
		return err
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("writing %s: syncing directory: %w", path, err)
	}
	return nil
}

// publishNoReplace moves tmp to path unless path exists. A hard link is
// atomic and fails on an existing target; on file systems without hard
// links it falls back to a check and a rename (racy only against another
// writer of the same key file at the same instant).
func publishNoReplace(tmp, path string) error {
	err := os.Link(tmp, path)
	if err == nil {
		return os.Remove(tmp)
	}
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("writing %s: %w", path, ErrExists)
	}
	if _, serr := os.Lstat(path); serr == nil {
		return fmt.Errorf("writing %s: %w", path, ErrExists)
	}
	if rerr := os.Rename(tmp, path); rerr != nil {
		return fmt.Errorf("writing %s: %w", path, rerr)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// LoadKeyFile reads a key file written by WriteKeyFile (64 hex digits,
// optionally followed by a newline) or holding exactly 32 raw bytes. It
// refuses a file whose mode grants any permission to group or others
// (ErrKeyFileMode), anything but a regular file, a file of another size or
// format (ErrKeyFileFormat), and an all-zero key.
func LoadKeyFile(path string) (Key, error) {
	return loadKeyFile(path, true)
}

func loadKeyFile(path string, checkMode bool) (Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return Key{}, fmt.Errorf("loading key: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Key{}, fmt.Errorf("loading key %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return Key{}, fmt.Errorf("loading key %s: not a regular file: %w", path, ErrKeyFileFormat)
	}
	if perm := st.Mode().Perm(); checkMode && perm&0o077 != 0 {
		return Key{}, fmt.Errorf("%w: %s has mode %04o, open to group or others; run: chmod 600 %s",
			ErrKeyFileMode, path, perm, path)
	}
	var buf [maxKeyFileSize + 1]byte
	n, err := io.ReadFull(f, buf[:])
	defer clear(buf[:])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return Key{}, fmt.Errorf("loading key %s: %w", path, err)
	}
	k, ok := parseKeyBytes(buf[:n])
	if !ok {
		return Key{}, fmt.Errorf("loading key %s: %d bytes, want 64 hex digits or 32 raw bytes: %w",
			path, n, ErrKeyFileFormat)
	}
	if k.IsZero() {
		return Key{}, fmt.Errorf("loading key %s: key is all zeros: %w", path, ErrKeyFileFormat)
	}
	return k, nil
}

// parseKeyBytes accepts 32 raw bytes, or 64 hex digits with an optional
// trailing "\n" or "\r\n".
func parseKeyBytes(b []byte) (Key, bool) {
	var k Key
	if len(b) == len(k) {
		copy(k[:], b)
		return k, true
	}
	switch {
	case len(b) == 2*len(k)+2 && b[len(b)-2] == '\r' && b[len(b)-1] == '\n':
		b = b[:len(b)-2]
	case len(b) == 2*len(k)+1 && b[len(b)-1] == '\n':
		b = b[:len(b)-1]
	}
	if len(b) != 2*len(k) {
		return Key{}, false
	}
	if _, err := hex.Decode(k[:], b); err != nil {
		return Key{}, false
	}
	return k, true
}

// LoadNodeKey finds the node key. If credDir is set (systemd's
// $CREDENTIALS_DIRECTORY) and holds node.key, that file is used without a
// mode check: systemd owns it. Otherwise dataDir/node.key is loaded with
// LoadKeyFile. If that file does not exist and allowCreate is set, a new key
// is generated from r (nil: crypto/rand), written with WriteKeyFile (creating
// dataDir, mode 0700, if needed) and created is true; without allowCreate the
// error wraps fs.ErrNotExist.
func LoadNodeKey(dataDir, credDir string, allowCreate bool, r io.Reader) (k Key, created bool, err error) {
	if credDir != "" {
		p := filepath.Join(credDir, NodeKeyFile)
		_, err := os.Stat(p)
		switch {
		case err == nil:
			k, err := loadKeyFile(p, false)
			return k, false, err
		case !errors.Is(err, fs.ErrNotExist):
			return Key{}, false, fmt.Errorf("loading node key: %w", err)
		}
	}
	p := filepath.Join(dataDir, NodeKeyFile)
	k, err = LoadKeyFile(p)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, false, err
	}
	if !allowCreate {
		return Key{}, false, fmt.Errorf("loading node key: %s does not exist (run usipipo init): %w", p, fs.ErrNotExist)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return Key{}, false, fmt.Errorf("creating node key: %w", err)
	}
	k, err = GenerateKey(r)
	if err != nil {
		return Key{}, false, fmt.Errorf("creating node key: %w", err)
	}
	if err := WriteKeyFile(p, k); err != nil {
		if errors.Is(err, ErrExists) { // another process won the race: use its key
			k, err = LoadKeyFile(p)
			return k, false, err
		}
		return Key{}, false, fmt.Errorf("creating node key: %w", err)
	}
	return k, true, nil
}
