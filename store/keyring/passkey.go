package keyring

import (
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"io"

	"golang.org/x/crypto/scrypt"
)

// scryptParams are scrypt's cost parameters; N = 1<<logN.
type scryptParams struct {
	logN uint8
	r, p uint32
}

// defaultScrypt: N=2^15, r=8, p=1 (32 MiB, ~50–100 ms), the parameters
// recommended for interactive use by scrypt's documentation.
var defaultScrypt = scryptParams{logN: 15, r: 8, p: 1}

// kdfLimits bound the scrypt parameters read from a backup header or a
// marshalled PassKey, so a hostile file cannot exhaust memory or time.
type kdfLimits struct {
	maxLogN uint8
	maxR    uint32
	maxP    uint32
	maxMem  uint64 // bytes: 128·r·N
	maxWork uint64 // 128·r·N·p: memory passes, roughly time
}

var defaultKDFLimits = kdfLimits{maxLogN: 20, maxR: 32, maxP: 16, maxMem: 1 << 30, maxWork: 1 << 32}

func (s scryptParams) check(lim kdfLimits) error {
	if s.logN < 1 || s.logN > lim.maxLogN || s.r < 1 || s.r > lim.maxR || s.p < 1 || s.p > lim.maxP ||
		128*uint64(s.r)<<s.logN > lim.maxMem || 128*uint64(s.r)<<s.logN*uint64(s.p) > lim.maxWork {
		return fmt.Errorf("scrypt parameters N=2^%d r=%d p=%d out of bounds", s.logN, s.r, s.p)
	}
	return nil
}

const passSaltLen = 16

// PassKey is a key derived from an operator passphrase with scrypt, with
// the salt and parameters needed to derive it again. The node keeps it
// (MarshalBinary, sealed under the data key) to encrypt scheduled backups
// without keeping the passphrase. The zero PassKey is not usable.
type PassKey struct {
	params scryptParams
	salt   [passSaltLen]byte
	key    Key // scrypt(passphrase, salt, N, r, p, 32)
}

// NewPassKey derives a PassKey from passphrase with a random 16-byte salt
// from r (nil: crypto/rand) and scrypt N=2^15, r=8, p=1.
func NewPassKey(passphrase []byte, r io.Reader) (PassKey, error) {
	return newPassKey(passphrase, r, defaultScrypt)
}

func newPassKey(passphrase []byte, r io.Reader, sp scryptParams) (PassKey, error) {
	pk := PassKey{params: sp}
	if err := readRandom(r, pk.salt[:]); err != nil {
		return PassKey{}, fmt.Errorf("deriving passphrase key: %w", err)
	}
	k, err := deriveScrypt(passphrase, pk.salt[:], sp)
	if err != nil {
		return PassKey{}, fmt.Errorf("deriving passphrase key: %w", err)
	}
	pk.key = k
	return pk, nil
}

func deriveScrypt(passphrase, salt []byte, sp scryptParams) (Key, error) {
	b, err := scrypt.Key(passphrase, salt, 1<<sp.logN, int(sp.r), int(sp.p), len(Key{}))
	if err != nil {
		return Key{}, err
	}
	var k Key
	copy(k[:], b)
	clear(b)
	return k, nil
}

func (p PassKey) valid() bool { return p.params.logN != 0 }

// Matches reports whether passphrase derives this PassKey (one scrypt run).
func (p PassKey) Matches(passphrase []byte) bool {
	if !p.valid() {
		return false
	}
	k, err := deriveScrypt(passphrase, p.salt[:], p.params)
	return err == nil && subtle.ConstantTimeCompare(k[:], p.key[:]) == 1
}

const (
	passKeyVersion = 1
	kdfScrypt      = 1
	passKeySize    = 1 + 1 + 1 + 4 + 4 + passSaltLen + len(Key{})
)

// MarshalBinary encodes the PassKey, derived key included:
// version (1) | kdf = 1 scrypt (1) | log2 N (1) | r (4) | p (4) | salt (16) |
// key (32). The result is secret: keep it sealed.
func (p PassKey) MarshalBinary() ([]byte, error) {
	if !p.valid() {
		return nil, fmt.Errorf("marshalling passphrase key: zero PassKey")
	}
	b := make([]byte, 0, passKeySize)
	b = append(b, passKeyVersion, kdfScrypt, p.params.logN)
	b = binary.BigEndian.AppendUint32(b, p.params.r)
	b = binary.BigEndian.AppendUint32(b, p.params.p)
	b = append(b, p.salt[:]...)
	b = append(b, p.key[:]...)
	return b, nil
}

// UnmarshalPassKey decodes MarshalBinary's output, refusing unknown
// versions and out-of-bounds parameters.
func UnmarshalPassKey(b []byte) (PassKey, error) {
	if len(b) != passKeySize || b[0] != passKeyVersion || b[1] != kdfScrypt {
		return PassKey{}, fmt.Errorf("unmarshalling passphrase key: bad format")
	}
	var p PassKey
	p.params = scryptParams{logN: b[2], r: binary.BigEndian.Uint32(b[3:]), p: binary.BigEndian.Uint32(b[7:])}
	if err := p.params.check(defaultKDFLimits); err != nil {
		return PassKey{}, fmt.Errorf("unmarshalling passphrase key: %w", err)
	}
	copy(p.salt[:], b[11:])
	copy(p.key[:], b[11+passSaltLen:])
	return p, nil
}

// fileKeys derives one backup file's stream key and key check from the
// PassKey's master key and the file's random nonce (HKDF-SHA256).
func fileKeys(master Key, fileNonce []byte) (stream Key, check [checkSize]byte) {
	s, err := hkdf.Key(sha256.New, master[:], fileNonce, "usipipo/v1 backup stream key", len(stream))
	if err != nil {
		panic("keyring: hkdf: " + err.Error()) // only for absurd lengths
	}
	c, err := hkdf.Key(sha256.New, master[:], fileNonce, "usipipo/v1 backup key check", checkSize)
	if err != nil {
		panic("keyring: hkdf: " + err.Error())
	}
	copy(stream[:], s)
	copy(check[:], c)
	clear(s)
	return stream, check
}
