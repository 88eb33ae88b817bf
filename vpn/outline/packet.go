package outline

import (
	"crypto/cipher"
	"crypto/rand"
	"fmt"
)

// A UDP packet is the salt followed by the sealed payload (the SOCKS
// address then the datagram) under a zero nonce.

var zeroNonce [nonceSize]byte

// OpenPacket decrypts pkt in place and returns the plaintext (a sub-slice of pkt).
func OpenPacket(c *Cipher, pkt []byte) ([]byte, error) {
	ss := c.SaltSize()
	if len(pkt) < ss+tagSize {
		return nil, ErrAuth
	}
	aead, err := c.aead(pkt[:ss])
	if err != nil {
		return nil, err
	}
	p, err := aead.Open(pkt[ss:ss], zeroNonce[:], pkt[ss:], nil)
	if err != nil {
		return nil, ErrAuth
	}
	return p, nil
}

// SealPacket appends a fresh salt and the sealed plaintext to dst.
func SealPacket(c *Cipher, dst, plaintext []byte) ([]byte, error) {
	return sealPacket(c.aead, c.SaltSize(), dst, plaintext)
}

// sealPacket is SealPacket with the subkey derivation given: the server
// derives with pooled state and records its own salts.
func sealPacket(aeadFor func(salt []byte) (cipher.AEAD, error), saltSize int, dst, plaintext []byte) ([]byte, error) {
	start := len(dst)
	dst = append(dst, make([]byte, saltSize)...)
	salt := dst[start : start+saltSize]
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("outline: salt: %w", err)
	}
	aead, err := aeadFor(salt)
	if err != nil {
		return nil, err
	}
	return aead.Seal(dst, zeroNonce[:], plaintext, nil), nil
}
