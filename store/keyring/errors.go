package keyring

import "errors"

// Sentinel errors. Functions wrap them with context; test with errors.Is.
var (
	// ErrNotBackup: the stream does not start with the backup magic.
	ErrNotBackup = errors.New("keyring: not a usipipo backup")
	// ErrBadPassphrase: the passphrase does not derive the backup's key (or
	// the header's KDF fields were altered, which looks the same).
	ErrBadPassphrase = errors.New("keyring: wrong backup passphrase")
	// ErrCorrupt: a backup chunk or header field fails to authenticate or
	// parse, chunks were reordered, or data follows the final chunk. An
	// unsupported format version is reported as ErrCorrupt too.
	ErrCorrupt = errors.New("keyring: backup corrupt or tampered with")
	// ErrTruncated: the backup ends before its final chunk. A stream that
	// ends inside a chunk that then fails to authenticate matches both
	// ErrTruncated and ErrCorrupt: the two cannot be told apart.
	ErrTruncated = errors.New("keyring: backup truncated")
	// ErrBadToken: an API token is not of the form usp_<id>_<secret>.
	ErrBadToken = errors.New("keyring: malformed API token")
	// ErrKeyFileMode: a key file is readable or writable by group or others.
	ErrKeyFileMode = errors.New("keyring: key file permissions too open")
	// ErrKeyFileFormat: a key file is neither 32 raw bytes nor 64 hex digits.
	ErrKeyFileFormat = errors.New("keyring: key file has wrong size or format")
	// ErrExists: WriteKeyFile refuses to replace an existing file.
	ErrExists = errors.New("keyring: key file already exists")
	// ErrOpen: a sealed or wrapped blob fails to open (wrong key, record,
	// label, or tampered with).
	ErrOpen = errors.New("keyring: cannot open sealed data")
	// ErrBadHash: a password hash string is malformed or its parameters are
	// out of bounds.
	ErrBadHash = errors.New("keyring: malformed password hash")
)
