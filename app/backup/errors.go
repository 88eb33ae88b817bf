package backup

import "errors"

// Sentinel errors. Functions wrap them with context; test with errors.Is.
var (
	// ErrNotBackup: the input is not a usipipo backup at all (no backup
	// magic: random bytes, an empty file, a plain database file).
	ErrNotBackup = errors.New("backup: not a usipipo backup")
	// ErrBadPassphrase: the passphrase (or PassKey) does not open it.
	ErrBadPassphrase = errors.New("backup: wrong passphrase")
	// ErrCorrupt: the backup is truncated, tampered with, or its content
	// (archive layout, manifest, hash, database) does not check out.
	ErrCorrupt = errors.New("backup: corrupt, truncated or tampered with")
	// ErrUnsupported: the backup was made by a newer usipipo (a newer
	// backup format or database schema).
	ErrUnsupported = errors.New("backup: made by a newer usipipo")
)
