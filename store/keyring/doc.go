// Package keyring holds usipipo's key hierarchy for secrets (DESIGN.md
// principle 6) and the small set of primitives built on it.
//
// # Hierarchy
//
//	node key  (DATA/node.key, 0600, or a systemd credential; never in the db)
//	  └─ wraps the data key            Wrap / Unwrap, label-bound
//	       └─ seals record secrets      Seal / Open, bound to record type + id
//	       └─ wraps per-user keys       Wrap / Unwrap (erasing one = GDPR erase)
//	operator passphrase ─ scrypt ─ PassKey ─ encrypts backups   Encrypt / Decrypt
//
// Everything symmetric is AES-256-GCM with 32-byte [Key]s. Every blob starts
// with a format version byte so formats can change later; the additional data
// (AAD) always starts with "usipipo/v1" and a purpose ("seal" or "wrap") and
// then length-prefixed fields, so a blob cannot be opened for another purpose,
// record type, record id or label.
//
// # Formats
//
// Key file (WriteKeyFile): the 32 key bytes as 64 lowercase hex characters and
// a newline. LoadKeyFile also accepts exactly 32 raw bytes (what
// `head -c32 /dev/urandom` or a systemd credential gives).
//
// Sealed record secret (Seal) and wrapped key (Wrap):
//
//	version (1) | nonce (12, random) | ciphertext | GCM tag (16)
//
// Random 96-bit nonces keep one key safe for 2^32 seals (NIST SP 800-38D); a
// node seals far fewer secrets than that under one data key. [Sealer] does
// the AES-GCM setup once for hot paths.
//
// Password hash (HashPassword): a PHC string
// "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>" with unpadded standard base64.
// VerifyPassword reads the parameters from the string, within bounds;
// PasswordNeedsRehash tells when a stored hash predates the current defaults.
//
// API token (NewAPIToken): "usp_<id>_<secret>", id = 16 and secret = 32
// characters of lowercase RFC 4648 base32 (80 and 160 bits). The store keeps
// id → HashSecret(secret) (SHA-256).
//
// Backup stream (Encrypt), all integers big-endian:
//
//	"USIPIPO-BACKUP" (14) | format version = 1 (1) | kdf = 1 scrypt (1)
//	| log2 N (1) | r (4) | p (4) | salt (16) | file nonce (32) | key check (16)
//	| chunk 0 | chunk 1 | … | final chunk
//
// The passphrase and salt give a 32-byte master key through scrypt (PassKey);
// HKDF-SHA256 over the master key salted with the random per-file nonce gives
// the file's stream key and a 16-byte key check, so one PassKey reused for
// every scheduled backup never reuses a (key, nonce) pair. Each chunk is 64 KiB
// of plaintext (the final one 0…64 KiB-1) sealed with the stream key and the
// whole header as AAD; its nonce is the chunk counter (bytes 3…10, uint64) and
// a final-chunk flag (byte 11), the STREAM construction of Hoang, Reyhanitabar,
// Rogaway and Vizár. So reordering, dropping, truncating or extending chunks,
// and altering the header, are all detected.
//
// Decrypt reports a wrong passphrase (ErrBadPassphrase) itself, from the key
// check, before any chunk is read. DecryptPassKey does the same with a
// stored PassKey, so the node can verify its scheduled backups.
//
// Decrypt yields plaintext before it has seen the end of the stream: a caller
// must treat any error, at any point, as "this backup is no good" and restore
// into a temporary place that it renames only after a clean io.EOF.
//
// # Randomness
//
// Functions taking an io.Reader read their random material from it (tests
// pass deterministic readers); a nil reader means crypto/rand.Reader.
//
// # Errors
//
// Errors are the sentinels of errors.go, wrapped with short context. They
// never carry plaintext, keys, tokens or passwords; [Key] prints as
// "keyring.Key(redacted)".
package keyring
