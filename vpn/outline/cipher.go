package outline

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/md5"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// Sizes fixed by SIP004.
const (
	tagSize       = 16     // every AEAD here has a 16-byte tag
	maxPayload    = 0x3FFF // a TCP chunk carries at most this much
	lenChunkSize  = 2 + tagSize
	maxSaltSize   = 32
	minSaltSize   = 16
	nonceSize     = 12
	subkeyInfoStr = "ss-subkey"
)

// method is one AEAD cipher of SIP004.
type method struct {
	name    string
	keySize int // also the salt size
	newAEAD func(key []byte) (cipher.AEAD, error)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

var methods = map[string]*method{
	"chacha20-ietf-poly1305": {"chacha20-ietf-poly1305", 32, chacha20poly1305.New},
	"aes-256-gcm":            {"aes-256-gcm", 32, newGCM},
	"aes-128-gcm":            {"aes-128-gcm", 16, newGCM},
}

// Methods lists the supported ciphers.
func Methods() []string {
	return []string{"chacha20-ietf-poly1305", "aes-256-gcm", "aes-128-gcm"}
}

// Cipher is an access key's method and master key, derived once from the
// password; subkeys are derived from it per connection or packet.
type Cipher struct {
	m   *method
	key []byte
}

// NewCipher derives the master key from the password with OpenSSL's
// EVP_BytesToKey (MD5, one round), as every Shadowsocks implementation does.
func NewCipher(methodName, password string) (*Cipher, error) {
	m, ok := methods[methodName]
	if !ok {
		return nil, fmt.Errorf("outline: cipher %q not supported", methodName)
	}
	if password == "" {
		return nil, fmt.Errorf("outline: empty password")
	}
	return &Cipher{m: m, key: bytesToKey([]byte(password), m.keySize)}, nil
}

// SaltSize is the per-connection salt length, equal to the key length.
func (c *Cipher) SaltSize() int { return c.m.keySize }

// Method names the cipher.
func (c *Cipher) Method() string { return c.m.name }

func bytesToKey(password []byte, size int) []byte {
	var key, prev []byte
	for len(key) < size {
		h := md5.New()
		h.Write(prev)
		h.Write(password)
		prev = h.Sum(nil)
		key = append(key, prev...)
	}
	return key[:size]
}

// aead derives the subkey for salt (HKDF-SHA1, info "ss-subkey") and
// returns its AEAD.
func (c *Cipher) aead(salt []byte) (cipher.AEAD, error) {
	return c.aeadWith(newDeriver(salt))
}

// aeadWith is aead with a deriver already reset to the salt (a pooled one
// on the server's paths).
func (c *Cipher) aeadWith(d *deriver) (cipher.AEAD, error) {
	a, err := c.m.newAEAD(d.subkey(c.key))
	if err != nil {
		return nil, fmt.Errorf("outline: subkey cipher: %w", err)
	}
	return a, nil
}

// increment adds one to a little-endian nonce.
func increment(nonce []byte) {
	for i := range nonce {
		nonce[i]++
		if nonce[i] != 0 {
			return
		}
	}
}
