package wire

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// InitLen is the length of the obfuscated2 init packet.
const InitLen = 64

// Transport tags (bytes 56..60 of the decrypted init): which MTProto
// transport the client speaks inside the obfuscated stream.
const (
	TagAbridged           uint32 = 0xefefefef
	TagIntermediate       uint32 = 0xeeeeeeee
	TagPaddedIntermediate uint32 = 0xdddddddd
)

// ErrBadTag reports an init packet whose decrypted transport tag is not one
// of the three MTProto transports: the secret is wrong, or it is not MTProto.
var ErrBadTag = errors.New("mtproto: obfuscated2 init has no valid transport tag")

// Init is a parsed obfuscated2 init packet: the transport tag, the DC index
// and the two ciphers of the stream it opens.
type Init struct {
	Tag uint32
	DC  int
	// Dec decrypts what the peer sends after the init; Enc encrypts what we
	// send back. Both continue the key streams the init started.
	Dec, Enc cipher.Stream
}

// ParseInit decodes a client's init with a 16-byte secret (nil: no secret,
// as towards a DC). It fails with ErrBadTag when the decrypted tag is not
// one of the transports, which is how a wrong secret shows.
func ParseInit(init *[InitLen]byte, secret []byte) (Init, error) {
	decKey, encKey, err := initKeys(init, secret)
	if err != nil {
		return Init{}, err
	}
	dec, err := NewCTR(decKey[:], init[40:56])
	if err != nil {
		return Init{}, err
	}
	var plain [InitLen]byte
	dec.XORKeyStream(plain[:], init[:])
	tag := binary.LittleEndian.Uint32(plain[56:60])
	if !validTag(tag) {
		return Init{}, ErrBadTag
	}
	rev := reversed(init)
	enc, err := NewCTR(encKey[:], rev[32:48])
	if err != nil {
		return Init{}, err
	}
	return Init{Tag: tag, DC: int(int16(binary.LittleEndian.Uint16(plain[60:62]))), Dec: dec, Enc: enc}, nil
}

// TagMatches checks the transport tag of init under secret with a single AES
// block, without building the stream ciphers: the cheap test run against
// every secret when searching for the one a connection uses.
func TagMatches(init *[InitLen]byte, secret []byte) bool {
	decKey, _, err := initKeys(init, secret)
	if err != nil {
		return false
	}
	block, err := aes.NewCipher(decKey[:])
	if err != nil {
		return false
	}
	// Bytes 48..64 are the fourth counter block: IV + 3 (big-endian).
	var ctr, ks [16]byte
	copy(ctr[:], init[40:56])
	addCounter(&ctr, 3)
	block.Encrypt(ks[:], ctr[:])
	tag := binary.LittleEndian.Uint32(init[56:60]) ^ binary.LittleEndian.Uint32(ks[8:12])
	return validTag(tag)
}

func addCounter(ctr *[16]byte, n uint64) {
	lo := binary.BigEndian.Uint64(ctr[8:]) + n
	hi := binary.BigEndian.Uint64(ctr[:8])
	if lo < n {
		hi++
	}
	binary.BigEndian.PutUint64(ctr[8:], lo)
	binary.BigEndian.PutUint64(ctr[:8], hi)
}

func validTag(t uint32) bool {
	return t == TagAbridged || t == TagIntermediate || t == TagPaddedIntermediate
}

// initKeys derives the two AES-256 keys of an init: the decrypt key from
// bytes 8..40, the encrypt key from the reversed bytes 8..56, each hashed
// with the secret when there is one.
func initKeys(init *[InitLen]byte, secret []byte) (dec, enc [32]byte, err error) {
	rev := reversed(init)
	if secret == nil {
		copy(dec[:], init[8:40])
		copy(enc[:], rev[:32])
		return dec, enc, nil
	}
	if len(secret) != 16 {
		return dec, enc, fmt.Errorf("mtproto: secret of %d bytes, want 16", len(secret))
	}
	h := sha256.New()
	h.Write(init[8:40])
	h.Write(secret)
	h.Sum(dec[:0])
	h.Reset()
	h.Write(rev[:32])
	h.Write(secret)
	h.Sum(enc[:0])
	return dec, enc, nil
}

func reversed(init *[InitLen]byte) (rev [48]byte) {
	for i := range rev {
		rev[i] = init[55-i]
	}
	return rev
}

func NewCTR(key, iv []byte) (cipher.Stream, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("mtproto: aes key: %w", err)
	}
	return cipher.NewCTR(b, iv), nil
}

// NewDCInit builds the init we send to a data centre (no secret) for the
// given transport tag and DC index. enc encrypts what we send after it, dec
// decrypts what the DC answers.
func NewDCInit(rand io.Reader, tag uint32, dc int) (init [InitLen]byte, enc, dec cipher.Stream, err error) {
	if err := randomInit(rand, &init); err != nil {
		return init, nil, nil, err
	}
	encKey, decKey, _ := initKeys(&init, nil) // no secret: cannot fail
	rev := reversed(&init)
	if enc, err = NewCTR(encKey[:], init[40:56]); err != nil {
		return init, nil, nil, err
	}
	if dec, err = NewCTR(decKey[:], rev[32:48]); err != nil {
		return init, nil, nil, err
	}
	binary.LittleEndian.PutUint32(init[56:60], tag)
	binary.LittleEndian.PutUint16(init[60:62], uint16(int16(dc)))
	var sealed [InitLen]byte
	enc.XORKeyStream(sealed[:], init[:])
	copy(init[56:], sealed[56:])
	return init, enc, dec, nil
}

// NewDCInitPassthrough builds the init towards a data centre so that the
// DC's stream back to us is, byte for byte, the stream the client expects
// from us: the proxy can forward DC→client bytes without decrypting and
// re-encrypting them (the relay's fast mode; see mtproto.Options.FastMode
// for when that is valid).
//
// In obfuscated2 the receiver of an init encrypts what it sends with the key
// reversed(init)[0:32] and the IV reversed(init)[32:48] — init bytes 24..56
// and 8..24, read backwards — starting at keystream offset 0. The client's
// init and the secret give the key and IV the client decrypts with
// (SHA-256 of its reversed bytes 8..40 and the secret, and its reversed
// bytes 40..56); we put them, reversed, into bytes 8..56 of the DC's init.
// Only bytes 0..8 stay random. enc encrypts what we send the DC after the
// init (its key is now the client's downstream material, which is why the
// other direction cannot be passed through too: both directions' keys come
// from the same 48 bytes and overlap in bytes 24..40).
func NewDCInitPassthrough(rand io.Reader, client *[InitLen]byte, secret []byte, tag uint32, dc int) (init [InitLen]byte, enc cipher.Stream, err error) {
	_, clientEnc, err := initKeys(client, secret)
	if err != nil {
		return init, nil, err
	}
	clientRev := reversed(client)
	for i := range 32 {
		init[55-i] = clientEnc[i]
	}
	for i := range 16 {
		init[55-32-i] = clientRev[32+i]
	}
	if err := randomHead(rand, &init); err != nil {
		return init, nil, err
	}
	if enc, err = NewCTR(init[8:40], init[40:56]); err != nil {
		return init, nil, err
	}
	binary.LittleEndian.PutUint32(init[56:60], tag)
	binary.LittleEndian.PutUint16(init[60:62], uint16(int16(dc)))
	var sealed [InitLen]byte
	enc.XORKeyStream(sealed[:], init[:])
	copy(init[56:], sealed[56:])
	return init, enc, nil
}

// randomHead draws bytes 0..8 of an init whose other bytes are set, until
// they cannot be mistaken for another protocol's first bytes.
func randomHead(rand io.Reader, init *[InitLen]byte) error {
	for {
		if _, err := io.ReadFull(rand, init[:8]); err != nil {
			return fmt.Errorf("mtproto: random init: %w", err)
		}
		if !confusable(init) {
			return nil
		}
	}
}

// randomInit draws init bytes that cannot be mistaken for another protocol's
// first bytes, as the official clients do.
func randomInit(rand io.Reader, init *[InitLen]byte) error {
	for {
		if _, err := io.ReadFull(rand, init[:]); err != nil {
			return fmt.Errorf("mtproto: random init: %w", err)
		}
		if !confusable(init) {
			return nil
		}
	}
}

// confusable reports init heads the official clients never send: the
// abridged marker, a zero second word, or the first bytes of HTTP (HEAD,
// POST, GET , OPTI), TLS, or the intermediate transports.
func confusable(init *[InitLen]byte) bool {
	first := binary.LittleEndian.Uint32(init[0:4])
	switch {
	case init[0] == 0xef, binary.LittleEndian.Uint32(init[4:8]) == 0:
		return true
	case first == 0x44414548, first == 0x54534f50, first == 0x20544547, first == 0x4954504f,
		first == 0x02010316, first == TagPaddedIntermediate, first == TagIntermediate:
		return true
	}
	return false
}
