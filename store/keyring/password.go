package keyring

import (
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// argonParams are argon2id's cost parameters.
type argonParams struct {
	memory  uint32 // KiB
	time    uint32 // passes
	threads uint8
}

// defaultArgon follows OWASP's password storage cheat sheet
// (argon2id, 19 MiB, 2 passes, 1 lane): about 20–40 ms per hash on one core.
var defaultArgon = argonParams{memory: 19456, time: 2, threads: 1}

const (
	argonSaltLen = 16
	argonKeyLen  = 32
)

// argonLimits bound the parameters accepted from a stored hash string, so a
// hostile or corrupt string cannot make one login allocate gigabytes or spin
// for minutes.
type argonLimits struct {
	maxMemory  uint32 // KiB
	maxTime    uint32
	maxThreads uint32
	maxEncoded int
}

// defaultArgonLimits allow raising the defaults several-fold later
// (64 MiB, 16 passes, 8 lanes) while refusing absurd values.
var defaultArgonLimits = argonLimits{maxMemory: 64 * 1024, maxTime: 16, maxThreads: 8, maxEncoded: 256}

var b64 = base64.RawStdEncoding.Strict()

// HashPassword hashes password with argon2id and the default parameters,
// with a 16-byte salt from r (nil: crypto/rand), and returns the PHC string
// "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>".
func HashPassword(r io.Reader, password string) (string, error) {
	return hashPassword(r, password, defaultArgon)
}

func hashPassword(r io.Reader, password string, p argonParams) (string, error) {
	var salt [argonSaltLen]byte
	if err := readRandom(r, salt[:]); err != nil {
		return "", fmt.Errorf("hashing password: %w", err)
	}
	h := argon2.IDKey([]byte(password), salt[:], p.time, p.memory, p.threads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.memory, p.time, p.threads, b64.EncodeToString(salt[:]), b64.EncodeToString(h)), nil
}

// VerifyPassword checks password against a HashPassword string, using the
// parameters in the string (so they can change over time; see
// PasswordNeedsRehash). It returns (false, nil) on a wrong password and an
// ErrBadHash error when the string is malformed or its parameters are out of
// bounds (memory > 64 MiB, t > 16, p > 8, salt 8–64 and hash 16–64 bytes).
// The comparison is constant-time.
func VerifyPassword(encoded, password string) (bool, error) {
	return verifyPassword(encoded, password, defaultArgonLimits)
}

func verifyPassword(encoded, password string, lim argonLimits) (bool, error) {
	p, salt, want, err := parsePHC(encoded, lim)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(password), salt, p.time, p.memory, p.threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// PasswordNeedsRehash reports whether encoded was made with other than the
// current default parameters (or is malformed), so a caller that has just
// verified the password can store a fresh HashPassword.
func PasswordNeedsRehash(encoded string) bool {
	p, salt, h, err := parsePHC(encoded, defaultArgonLimits)
	return err != nil || p != defaultArgon || len(salt) != argonSaltLen || len(h) != argonKeyLen
}

func badHash(why string) error { return fmt.Errorf("%w: %s", ErrBadHash, why) }

// parsePHC parses "$argon2id$v=19$m=M,t=T,p=P$salt$hash" strictly: fields in
// this order, canonical decimals, canonical unpadded base64, bounded values.
func parsePHC(s string, lim argonLimits) (p argonParams, salt, hash []byte, err error) {
	if len(s) > lim.maxEncoded {
		return p, nil, nil, badHash("too long")
	}
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return p, nil, nil, badHash("not a PHC string")
	}
	if parts[1] != "argon2id" {
		return p, nil, nil, badHash("not argon2id")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, badHash("unsupported argon2 version")
	}
	kv := strings.Split(parts[3], ",")
	if len(kv) != 3 {
		return p, nil, nil, badHash("want m=,t=,p=")
	}
	m, err1 := phcUint(kv[0], "m=", 8, lim.maxMemory)
	t, err2 := phcUint(kv[1], "t=", 1, lim.maxTime)
	th, err3 := phcUint(kv[2], "p=", 1, lim.maxThreads)
	if err1 != nil || err2 != nil || err3 != nil {
		return p, nil, nil, badHash("parameters malformed or out of bounds")
	}
	if m < 8*th {
		return p, nil, nil, badHash("memory below 8 KiB per lane")
	}
	salt, err = decodeB64(parts[4])
	if err != nil || len(salt) < 8 || len(salt) > 64 {
		return p, nil, nil, badHash("bad salt")
	}
	hash, err = decodeB64(parts[5])
	if err != nil || len(hash) < 16 || len(hash) > 64 {
		return p, nil, nil, badHash("bad hash")
	}
	return argonParams{memory: m, time: t, threads: uint8(th)}, salt, hash, nil
}

// phcUint parses "<prefix><decimal>" with no sign, no leading zeros and
// lo <= value <= hi.
func phcUint(s, prefix string, lo, hi uint32) (uint32, error) {
	d, ok := strings.CutPrefix(s, prefix)
	if !ok || d == "" || len(d) > 10 || (len(d) > 1 && d[0] == '0') {
		return 0, ErrBadHash
	}
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return 0, ErrBadHash
		}
	}
	v, err := strconv.ParseUint(d, 10, 32)
	if err != nil || uint32(v) < lo || uint32(v) > hi {
		return 0, ErrBadHash
	}
	return uint32(v), nil
}

// decodeB64 decodes canonical unpadded standard base64 only (the decoder
// alone would skip embedded newlines).
func decodeB64(s string) ([]byte, error) {
	b, err := b64.DecodeString(s)
	if err != nil || b64.EncodeToString(b) != s {
		return nil, ErrBadHash
	}
	return b, nil
}
