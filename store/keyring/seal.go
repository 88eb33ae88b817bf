package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

const (
	sealVersion = 1
	nonceSize   = 12
	tagSize     = 16
	// sealOverhead is what Seal adds to a plaintext.
	sealOverhead = 1 + nonceSize + tagSize
	// WrappedKeySize is the length of a Wrap blob.
	WrappedKeySize = sealOverhead + len(Key{})

	aadPrefix   = "usipipo/v1"
	purposeSeal = "seal"
	purposeWrap = "wrap"
)

// SealOverhead is how many bytes Seal adds to a plaintext.
const SealOverhead = sealOverhead

func newGCM(k Key) cipher.AEAD {
	b, err := aes.NewCipher(k[:])
	if err != nil {
		panic("keyring: aes.NewCipher: " + err.Error()) // 32-byte keys never fail
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		panic("keyring: cipher.NewGCM: " + err.Error())
	}
	return g
}

// aad builds the additional data: "usipipo/v1", the version byte, the
// purpose, then each field as a 4-byte big-endian length and its bytes, so no
// two different field lists give the same AAD.
func aad(version byte, purpose string, fields ...string) []byte {
	n := len(aadPrefix) + 1 + 1 + len(purpose)
	for _, f := range fields {
		n += 4 + len(f)
	}
	b := make([]byte, 0, n)
	b = append(b, aadPrefix...)
	b = append(b, version, byte(len(purpose)))
	b = append(b, purpose...)
	for _, f := range fields {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return b
}

func seal(g cipher.AEAD, r io.Reader, ad, plaintext []byte) ([]byte, error) {
	out := make([]byte, 1+nonceSize, sealOverhead+len(plaintext))
	out[0] = sealVersion
	if err := readRandom(r, out[1:]); err != nil {
		return nil, err
	}
	return g.Seal(out, out[1:1+nonceSize], plaintext, ad), nil
}

func open(g cipher.AEAD, ad, blob []byte) ([]byte, error) {
	if len(blob) < sealOverhead {
		return nil, fmt.Errorf("%w: %d bytes is too short", ErrOpen, len(blob))
	}
	if blob[0] != sealVersion {
		return nil, fmt.Errorf("%w: unknown format version %d", ErrOpen, blob[0])
	}
	pt, err := g.Open(nil, blob[1:1+nonceSize], blob[1+nonceSize:], ad)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

var errEmptyBinding = errors.New("keyring: record type, record id and label must not be empty")

// Seal encrypts a record secret under k (the data key or a per-user key),
// bound to recordType and recordID: the blob opens only with the same key,
// type and id. Both must be non-empty. Output: version byte | 12-byte random
// nonce (from r; nil: crypto/rand) | ciphertext | 16-byte tag.
func Seal(k Key, r io.Reader, recordType, recordID string, plaintext []byte) ([]byte, error) {
	return NewSealer(k).Seal(r, recordType, recordID, plaintext)
}

// Open decrypts a blob made by Seal with the same key, record type and
// record id. Any failure is ErrOpen; the error names neither the plaintext
// nor the key.
func Open(k Key, recordType, recordID string, sealed []byte) ([]byte, error) {
	return NewSealer(k).Open(recordType, recordID, sealed)
}

// Sealer is Seal and Open with the AES-GCM setup done once, for hot paths:
// the setup is most of a package-level Seal or Open of a small secret
// (a few µs against a few hundred ns).
// It is safe for concurrent use: the standard library's AES-GCM keeps no
// mutable state after construction.
type Sealer struct{ aead cipher.AEAD }

// NewSealer prepares k for repeated Seal and Open calls.
func NewSealer(k Key) *Sealer { return &Sealer{aead: newGCM(k)} }

// Seal is the package-level Seal under the Sealer's key.
func (s *Sealer) Seal(r io.Reader, recordType, recordID string, plaintext []byte) ([]byte, error) {
	if recordType == "" || recordID == "" {
		return nil, fmt.Errorf("sealing: %w", errEmptyBinding)
	}
	out, err := seal(s.aead, r, aad(sealVersion, purposeSeal, recordType, recordID), plaintext)
	if err != nil {
		return nil, fmt.Errorf("sealing %s: %w", recordType, err)
	}
	return out, nil
}

// Open is the package-level Open under the Sealer's key.
func (s *Sealer) Open(recordType, recordID string, sealed []byte) ([]byte, error) {
	if recordType == "" || recordID == "" {
		return nil, ErrOpen
	}
	return open(s.aead, aad(sealVersion, purposeSeal, recordType, recordID), sealed)
}

// Wrap encrypts key k under kek, bound to label (for example "data-key" or
// "user/<id>"), which must be non-empty. The blob is WrappedKeySize bytes,
// in Seal's format but with its own AAD purpose, so a wrapped key and a
// sealed record never open as each other.
func Wrap(kek, k Key, label string, r io.Reader) ([]byte, error) {
	if label == "" {
		return nil, fmt.Errorf("wrapping key: %w", errEmptyBinding)
	}
	out, err := seal(newGCM(kek), r, aad(sealVersion, purposeWrap, label), k[:])
	if err != nil {
		return nil, fmt.Errorf("wrapping key %q: %w", label, err)
	}
	return out, nil
}

// Unwrap reverses Wrap with the same kek and label. Any failure is ErrOpen.
func Unwrap(kek Key, blob []byte, label string) (Key, error) {
	if label == "" || len(blob) != WrappedKeySize {
		return Key{}, fmt.Errorf("unwrapping key %q: %w", label, ErrOpen)
	}
	pt, err := open(newGCM(kek), aad(sealVersion, purposeWrap, label), blob)
	if err != nil {
		return Key{}, fmt.Errorf("unwrapping key %q: %w", label, err)
	}
	var k Key
	copy(k[:], pt)
	clear(pt)
	return k, nil
}
