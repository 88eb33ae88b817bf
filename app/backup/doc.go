// Package backup writes, verifies and restores usipipo's encrypted backups
// (DESIGN.md principles 6 and 8, and "Interfaces users rely on").
//
// # Format
//
// A backup is one keyring backup stream (keyring.Encrypt: scrypt from the
// operator passphrase, then AES-256-GCM in authenticated 64 KiB chunks)
// around a tar archive of exactly three regular entries, in this order:
//
//	manifest.json   the [Manifest], JSON, at most 64 KiB; db_sha256 is empty
//	usipipo.db      a consistent copy of the bbolt file, db_size bytes
//	sha256          64 lowercase hex digits: SHA-256 of usipipo.db
//
// [Write] streams: it opens one bbolt read transaction, whose Size() it
// knows before the first byte, writes the manifest, copies the file through
// the transaction (bbolt's Tx.WriteTo) while hashing it, and only then writes
// the hash as the trailing sha256 entry — so no temporary copy is needed. The
// manifest carries the raw data key; it is safe there because the whole
// stream is encrypted to the passphrase, and it is what lets a backup restore
// on a new machine that has only the passphrase: [Install] wraps it under the
// new machine's node key.
//
// While Write holds its read transaction, bbolt cannot remap a growing file,
// so a commit that needs the file to grow waits until the backup ends.
// Writers that do not grow the file go on. Write to something fast (a local
// file, the admin socket's reader) rather than a slow network peer.
//
// # Restoring
//
// [Read] (passphrase) and [ReadWithPassKey] (the node's stored PassKey)
// decrypt a backup, check its tar layout, manifest and hash, write the
// database into a temporary file, open it with store.Open (which migrates an
// older schema forward) and run Store.Check. Only a stream that ends in a
// clean, authenticated end of file is accepted, and on any error nothing is
// left behind. [Install] then moves the verified file into the data
// directory, keeping the previous database as
// usipipo.db.pre-restore-<UTC time>.
//
// # Scheduled backups
//
// A [Scheduler] writes DATA/backups/usipipo-<UTC time>.bak on a timer,
// verifies each file by restoring it into a scratch directory before giving
// it its final name, and keeps the newest few.
//
// # Secrets
//
// Nothing here logs or formats the passphrase, the PassKey or the data key;
// [Manifest] redacts its data key in slog output. Errors are this package's
// sentinels (errors.go) wrapped with context; they also match the keyring
// sentinel they come from.
package backup
