package backup

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/keyring"
)

// DBName is the database file's name in the data directory.
const DBName = "usipipo.db"

// DataKeyLabel binds the data key wrapped under the node key (store.MetaDataKey).
const DataKeyLabel = "usipipo/data-key"

// lockWait is how long Install waits for the current database's file lock
// before deciding that a node holds it.
const lockWait = 200 * time.Millisecond

// Install moves a database verified by Read into dataDir/usipipo.db for the
// node whose node key is nodeKey. It wraps the manifest's data key under
// nodeKey (label DataKeyLabel) into the restored database's meta
// (store.MetaDataKey), keeps the current database, if any, as
// usipipo.db.pre-restore-<UTC time> (a hard link, so usipipo.db never
// disappears), renames the new file over usipipo.db and fsyncs the
// directory. It refuses with store.ErrLocked while a running node holds the
// current database, and holds that file's lock itself until it is done so
// no node starts in between. rand feeds the wrap's nonce (nil: crypto/rand).
//
// On error the current database is untouched and verifiedPath is where it
// was (its meta may hold the new wrapped key); on success it is gone.
func Install(verifiedPath, dataDir string, m *Manifest, nodeKey keyring.Key, rand io.Reader) (err error) {
	if m == nil {
		return errors.New("installing restored database: nil manifest")
	}
	dataKey, err := m.Key()
	if err != nil {
		return fmt.Errorf("installing restored database: %w", err)
	}
	if nodeKey.IsZero() {
		return errors.New("installing restored database: zero node key")
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("installing restored database: %w", err)
	}
	target := filepath.Join(dataDir, DBName)
	unlock, err := lockCurrent(target)
	if err != nil {
		return fmt.Errorf("installing restored database: %w", err)
	}
	defer unlock()
	staged, undo, err := stage(verifiedPath, dataDir)
	if err != nil {
		return fmt.Errorf("installing restored database: %w", err)
	}
	defer func() {
		if err != nil {
			undo()
		}
	}()
	wrapped, err := keyring.Wrap(nodeKey, dataKey, DataKeyLabel, rand)
	if err != nil {
		return fmt.Errorf("installing restored database: %w", err)
	}
	if err := putMeta(staged, store.MetaDataKey, wrapped); err != nil {
		return fmt.Errorf("installing restored database: %w", err)
	}
	putBack, err := keepPrevious(target, time.Now())
	if err != nil {
		return fmt.Errorf("installing restored database: %w", err)
	}
	if err := os.Rename(staged, target); err != nil {
		putBack()
		return fmt.Errorf("installing restored database: %w", err)
	}
	if err := syncDir(dataDir); err != nil {
		return fmt.Errorf("installing restored database: syncing %s: %w", dataDir, err)
	}
	return nil
}

// lockCurrent takes a shared lock on the current database by opening it
// read-only with a short timeout: a running node's exclusive lock makes
// that fail with store.ErrLocked. A missing file needs no lock; one bbolt
// cannot open (it is about to be replaced) is not locked by any node.
func lockCurrent(path string) (unlock func(), err error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return func() {}, nil
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: lockWait})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%s: %w", path, store.ErrLocked)
	}
	if err != nil {
		return func() {}, nil
	}
	return func() { db.Close() }, nil
}

// stage puts the verified file in dataDir under a temporary name (renaming,
// or copying across file systems) and returns how to undo that.
func stage(verifiedPath, dataDir string) (staged string, undo func(), err error) {
	if abs(filepath.Dir(verifiedPath)) == abs(dataDir) {
		return verifiedPath, func() {}, nil
	}
	tmp, err := os.CreateTemp(dataDir, ".usipipo-restore-*.db")
	if err != nil {
		return "", nil, err
	}
	staged = tmp.Name()
	tmp.Close()
	if err := os.Rename(verifiedPath, staged); err == nil {
		return staged, func() { os.Rename(staged, verifiedPath) }, nil
	}
	if err := copyFile(verifiedPath, staged); err != nil {
		os.Remove(staged)
		return "", nil, err
	}
	return staged, func() { os.Remove(staged) }, nil
}

func abs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return filepath.Clean(a)
	}
	return filepath.Clean(p)
}

func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return fmt.Errorf("copying %s: %w", from, err)
	}
	if err := dst.Sync(); err != nil {
		dst.Close()
		return err
	}
	if err := dst.Close(); err != nil {
		return err
	}
	return os.Remove(from)
}

// putMeta writes one meta value into the database at path (fsynced by the
// commit).
func putMeta(path string, key, value []byte) error {
	st, err := store.Open(store.Options{Path: path, Timeout: lockWait})
	if err != nil {
		return err
	}
	err = st.PutMeta(map[string][]byte{string(key): value})
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing the wrapped data key: %w", err)
	}
	return nil
}

// keepPrevious hard-links the current database (if any) to
// usipipo.db.pre-restore-<UTC time>, adding -2, -3… if that name is taken.
// Without hard links it renames it instead, and putBack undoes that.
func keepPrevious(target string, now time.Time) (putBack func(), err error) {
	putBack = func() {}
	if _, err := os.Stat(target); errors.Is(err, fs.ErrNotExist) {
		return putBack, nil
	}
	base := target + ".pre-restore-" + now.UTC().Format(timeLayout)
	for i := 1; i < 1000; i++ {
		name := base
		if i > 1 {
			name += "-" + strconv.Itoa(i)
		}
		err := os.Link(target, name)
		if err == nil {
			return putBack, nil
		}
		if _, serr := os.Lstat(name); errors.Is(err, fs.ErrExist) || serr == nil {
			continue
		}
		if rerr := os.Rename(target, name); rerr != nil {
			return nil, fmt.Errorf("keeping the previous database: %w", rerr)
		}
		return func() { os.Rename(name, target) }, nil
	}
	return nil, fmt.Errorf("keeping the previous database: too many pre-restore copies of %s", target)
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
