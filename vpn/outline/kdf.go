package outline

import (
	"crypto/cipher"
	"crypto/sha1"
	"encoding"
	"hash"
)

const sha1Block = 64

// deriver computes the HKDF-SHA1 subkeys of one salt under many master keys,
// the inner loop of a key search. HKDF's extract step is HMAC keyed by the
// salt, so the salt's padded HMAC states are computed once per connection
// and restored for each key; nothing is allocated per key. It is not safe
// for concurrent use: each search worker has its own.
type deriver struct {
	salt            []byte
	inner, outer    []byte // marshalled SHA-1 states after salt^ipad, salt^opad
	h               hash.Hash
	pad             [sha1Block]byte
	prk, t1, t2, sk [sha1.Size]byte
	msg             [sha1.Size + len(subkeyInfoStr) + 1]byte
	sub             [maxSaltSize]byte
	lenOut          [2]byte
}

func newDeriver(salt []byte) *deriver {
	d := &deriver{h: sha1.New()}
	d.reset(salt)
	return d
}

// reset makes d derive for salt, reusing its buffers: a pooled deriver
// costs no allocation per connection or packet.
func (d *deriver) reset(salt []byte) {
	d.salt = salt
	d.inner = d.padState(d.inner[:0], salt, 0x36)
	d.outer = d.padState(d.outer[:0], salt, 0x5c)
}

// wipe forgets the last subkey and what led to it before d goes back to
// a pool (the salt states are public and are overwritten by reset).
func (d *deriver) wipe() {
	clear(d.sub[:])
	clear(d.prk[:])
	clear(d.t1[:])
	clear(d.t2[:])
	clear(d.sk[:])
	clear(d.pad[:])
	d.h.Reset()
	d.salt = nil
}

// padState appends to dst the SHA-1 state after hashing key xor pad (key <= 64 bytes).
func (d *deriver) padState(dst, key []byte, pad byte) []byte {
	d.keyPad(key, pad)
	st, err := d.h.(encoding.BinaryAppender).AppendBinary(dst)
	if err != nil {
		panic("sha1 state cannot be marshalled: " + err.Error())
	}
	return st
}

// keyPad resets h and writes key xor pad, one block.
func (d *deriver) keyPad(key []byte, pad byte) {
	for i := range d.pad {
		d.pad[i] = pad
	}
	for i, b := range key {
		d.pad[i] ^= b
	}
	d.h.Reset()
	d.h.Write(d.pad[:])
}

func (d *deriver) restore(st []byte) {
	if err := d.h.(encoding.BinaryUnmarshaler).UnmarshalBinary(st); err != nil {
		panic("sha1 state cannot be restored: " + err.Error())
	}
}

// hmacPRK computes HMAC(prk, msg) into out.
func (d *deriver) hmacPRK(msg []byte, out *[sha1.Size]byte) {
	d.keyPad(d.prk[:], 0x36)
	d.h.Write(msg)
	d.h.Sum(d.sk[:0])
	d.keyPad(d.prk[:], 0x5c)
	d.h.Write(d.sk[:])
	d.h.Sum(out[:0])
}

// subkey returns HKDF-SHA1(master, salt, "ss-subkey") of len(master) bytes,
// valid until the next call.
func (d *deriver) subkey(master []byte) []byte {
	// Extract: PRK = HMAC(salt, master).
	d.restore(d.inner)
	d.h.Write(master)
	d.h.Sum(d.sk[:0])
	d.restore(d.outer)
	d.h.Write(d.sk[:])
	d.h.Sum(d.prk[:0])
	// Expand: T1 = HMAC(PRK, info|1), T2 = HMAC(PRK, T1|info|2).
	m := append(append(d.msg[:0], subkeyInfoStr...), 1)
	d.hmacPRK(m, &d.t1)
	n := copy(d.sub[:], d.t1[:])
	if len(master) > n {
		m = append(append(append(d.msg[:0], d.t1[:]...), subkeyInfoStr...), 2)
		d.hmacPRK(m, &d.t2)
		copy(d.sub[n:], d.t2[:])
	}
	return d.sub[:len(master)]
}

// tryLength derives c's subkey for the salt and opens a sealed length chunk
// with the zero nonce: the trial of a TCP key search.
func (d *deriver) tryLength(c *Cipher, sealed []byte) (cipher.AEAD, int, bool) {
	aead, err := c.m.newAEAD(d.subkey(c.key))
	if err != nil {
		return nil, 0, false
	}
	if _, err := aead.Open(d.lenOut[:0], zeroNonce[:], sealed[:lenChunkSize], nil); err != nil {
		return nil, 0, false
	}
	n := int(d.lenOut[0])<<8 | int(d.lenOut[1])
	return aead, n, n <= maxPayload
}
