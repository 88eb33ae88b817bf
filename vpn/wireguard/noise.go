package wireguard

import (
	"crypto/ecdh"
	"crypto/subtle"

	"golang.org/x/crypto/blake2s"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.zx2c4.com/wireguard/device"
)

// Handshake initiation layout (WireGuard whitepaper, 5.4.2).
const (
	initSize      = 148
	initEphemeral = 8   // 32 bytes
	initStatic    = 40  // 48 bytes: sealed initiator key
	initMAC1      = 116 // 16 bytes, over what precedes it
)

// initiations recovers the initiator's static key from a handshake
// initiation, as the responder's first steps do (Noise IKpsk2): only what
// is needed to know which peer knocks, so that a parked one can be put back
// on the device before wireguard-go reads the message.
type initiations struct {
	priv    *ecdh.PrivateKey
	pub     [32]byte
	mac1Key [blake2s.Size]byte
	h0      [blake2s.Size]byte // InitialHash mixed with our public key
}

func newInitiations(private []byte) (*initiations, error) {
	k, err := ecdh.X25519().NewPrivateKey(private)
	if err != nil {
		return nil, err
	}
	in := &initiations{priv: k}
	copy(in.pub[:], k.PublicKey().Bytes())
	in.mac1Key = blake2s.Sum256(append([]byte("mac1----"), in.pub[:]...))
	mixHash(&in.h0, &device.InitialHash, in.pub[:])
	return in, nil
}

// isInitiation reports a datagram shaped as a handshake initiation.
func isInitiation(b []byte) bool {
	return len(b) == initSize && b[0] == 1 && b[1] == 0 && b[2] == 0 && b[3] == 0
}

// isResponse reports a handshake response (message type 2).
func isResponse(b []byte) bool {
	return len(b) == device.MessageResponseSize && b[0] == 2 && b[1] == 0 && b[2] == 0 && b[3] == 0
}

// initiator returns the static public key of msg's sender; ok is false
// when mac1 or the sealed key does not check out.
func (in *initiations) initiator(msg []byte) (key [32]byte, ok bool) {
	mac, _ := blake2s.New128(in.mac1Key[:])
	mac.Write(msg[:initMAC1])
	var sum [16]byte
	if subtle.ConstantTimeCompare(mac.Sum(sum[:0]), msg[initMAC1:initMAC1+16]) != 1 {
		return key, false
	}
	eph := msg[initEphemeral : initEphemeral+32]
	var hash, chainKey, aeadKey [blake2s.Size]byte
	mixHash(&hash, &in.h0, eph)
	device.KDF1(&chainKey, device.InitialChainKey[:], eph)
	epk, err := ecdh.X25519().NewPublicKey(eph)
	if err != nil {
		return key, false
	}
	ss, err := in.priv.ECDH(epk)
	if err != nil {
		return key, false
	}
	device.KDF2(&chainKey, &aeadKey, chainKey[:], ss)
	aead, _ := chacha20poly1305.New(aeadKey[:])
	var nonce [chacha20poly1305.NonceSize]byte
	if _, err := aead.Open(key[:0], nonce[:], msg[initStatic:initStatic+48], hash[:]); err != nil {
		return key, false
	}
	return key, true
}

func mixHash(dst, h *[blake2s.Size]byte, data []byte) {
	d, _ := blake2s.New256(nil)
	d.Write(h[:])
	d.Write(data)
	d.Sum(dst[:0])
}
