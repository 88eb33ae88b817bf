package wire

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// TLS record types and limits.
const (
	RecordHandshake    = 0x16
	recordChangeCipher = 0x14
	recordAlert        = 0x15
	recordAppData      = 0x17
	RecordHeaderLen    = 5
	// maxHelloLen bounds a reassembled ClientHello: Chrome-like hellos with
	// post-quantum key shares are ~1.8 KiB; 16 KiB leaves ample room.
	maxHelloLen = 16 << 10
	// helloRandomOffset is where the client random sits in a ClientHello
	// written as one record: 5 (record) + 4 (handshake header) + 2 (version).
	helloRandomOffset = 11
)

// ErrNotHello reports bytes that are not a TLS ClientHello.
var ErrNotHello = errors.New("mtproto: not a TLS ClientHello")

// ClientHello is a ClientHello read off the wire.
type ClientHello struct {
	// Raw is every byte read, records included: what is replayed to the
	// fronting server when the hello is not ours.
	Raw []byte
	// Random is the client random as sent (the HMAC digest with the
	// timestamp folded into its last 4 bytes).
	Random    [32]byte
	SessionID []byte
	SNI       string
	// signed are the byte strings a client may have computed its HMAC
	// over, with the random zeroed: the records as sent, and, when the
	// hello came in several records, the same hello as one record.
	signed [][]byte
}

// ReadClientHello reads one ClientHello, reassembling it when it spans
// several handshake records. On ErrNotHello the returned hello still holds
// the bytes read (Raw), for the fronting server.
func ReadClientHello(r io.Reader) (*ClientHello, error) {
	h := &ClientHello{Raw: make([]byte, 0, 2048)}
	var msg []byte
	for need := 4; len(msg) < need; {
		hdr, err := readMore(r, h, RecordHeaderLen)
		if err != nil {
			return h, err
		}
		n := int(binary.BigEndian.Uint16(hdr[3:5]))
		if hdr[0] != RecordHandshake || hdr[1] != 3 || hdr[2] > 3 || n == 0 || len(msg)+n > maxHelloLen {
			return h, ErrNotHello
		}
		data, err := readMore(r, h, n)
		if err != nil {
			return h, err
		}
		msg = append(msg, data...)
		if len(msg) >= 4 {
			if msg[0] != 1 {
				return h, ErrNotHello
			}
			if need = 4 + (int(msg[1])<<16 | int(msg[2])<<8 | int(msg[3])); need > maxHelloLen {
				return h, ErrNotHello
			}
		}
	}
	return h, h.parse(msg)
}

// readMore appends n bytes from r to h.Raw and returns them.
func readMore(r io.Reader, h *ClientHello, n int) ([]byte, error) {
	start := len(h.Raw)
	h.Raw = append(h.Raw, make([]byte, n)...)
	got, err := io.ReadFull(r, h.Raw[start:])
	h.Raw = h.Raw[:start+got]
	if err != nil {
		return nil, fmt.Errorf("mtproto: reading ClientHello: %w", err)
	}
	return h.Raw[start:], nil
}

// parse reads the fields we need out of the handshake message msg.
func (h *ClientHello) parse(msg []byte) error {
	bodyLen := int(msg[1])<<16 | int(msg[2])<<8 | int(msg[3])
	if len(msg) != 4+bodyLen {
		return ErrNotHello // trailing bytes after the hello in its last record
	}
	b := msg[4:]
	if len(b) < 2+32+1 {
		return ErrNotHello
	}
	copy(h.Random[:], b[2:34])
	sidLen := int(b[34])
	b = b[35:]
	if sidLen > 32 || len(b) < sidLen {
		return ErrNotHello
	}
	h.SessionID = append([]byte(nil), b[:sidLen]...)
	h.SNI = parseSNI(b[sidLen:])
	h.signed = append(h.signed, zeroRandom(h.Raw))
	if len(h.Raw) != RecordHeaderLen+len(msg) {
		one := make([]byte, 0, RecordHeaderLen+len(msg))
		one = append(one, RecordHandshake, 3, 1, byte(len(msg)>>8), byte(len(msg)))
		h.signed = append(h.signed, zeroRandom(append(one, msg...)))
	}
	return nil
}

// zeroRandom copies a one-or-more-record hello with the random zeroed.
// The random starts in the first record at helloRandomOffset; a first
// record too short to hold it is not something any client sends.
func zeroRandom(rec []byte) []byte {
	c := bytes.Clone(rec)
	if len(c) >= helloRandomOffset+32 {
		clear(c[helloRandomOffset : helloRandomOffset+32])
	}
	return c
}

// parseSNI walks cipher suites, compression methods and extensions to the
// server_name extension; it returns "" when there is none or it is malformed.
func parseSNI(b []byte) string {
	skip := func(lenBytes int) bool {
		if len(b) < lenBytes {
			return false
		}
		n := 0
		for _, c := range b[:lenBytes] {
			n = n<<8 | int(c)
		}
		if len(b) < lenBytes+n {
			return false
		}
		b = b[lenBytes+n:]
		return true
	}
	if !skip(2) || !skip(1) || len(b) < 2 {
		return ""
	}
	b = b[2:]
	for len(b) >= 4 {
		typ, n := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		if len(b) < 4+n {
			return ""
		}
		if typ == 0 {
			return sniName(b[4 : 4+n])
		}
		b = b[4+n:]
	}
	return ""
}

func sniName(e []byte) string {
	// server_name_list: len(2), then entries: type(1) len(2) name.
	if len(e) < 5 || e[2] != 0 {
		return ""
	}
	n := int(binary.BigEndian.Uint16(e[3:5]))
	if len(e) < 5+n {
		return ""
	}
	return string(e[5 : 5+n])
}

// Verify checks the hello's HMAC against a 16-byte secret and returns the
// client's timestamp. It does not judge the timestamp.
func (h *ClientHello) Verify(secret []byte) (time.Time, bool) {
	for _, s := range h.signed {
		mac := hmac.New(sha256.New, secret)
		mac.Write(s)
		var sum [32]byte
		mac.Sum(sum[:0])
		if subtle.ConstantTimeCompare(sum[:28], h.Random[:28]) == 1 {
			ts := binary.LittleEndian.Uint32(sum[28:]) ^ binary.LittleEndian.Uint32(h.Random[28:])
			return time.Unix(int64(ts), 0), true
		}
	}
	return time.Time{}, false
}

// ServerHello builds the answer to a verified hello: a TLS 1.3 ServerHello
// echoing the session id, a change cipher spec, and an application-data
// record of certSize random bytes standing in for the encrypted
// certificate, with the server random set to HMAC(secret, client random ||
// the three records with the random zeroed), which is what clients check.
func ServerHello(rand io.Reader, h *ClientHello, secret []byte, certSize int) ([]byte, error) {
	body := make([]byte, 0, 128)
	body = append(body, 3, 3)
	body = append(body, make([]byte, 32)...) // random, set below
	body = append(body, byte(len(h.SessionID)))
	body = append(body, h.SessionID...)
	body = append(body, 0x13, 0x01, 0) // TLS_AES_128_GCM_SHA256, no compression
	var key [32]byte
	if _, err := io.ReadFull(rand, key[:]); err != nil {
		return nil, fmt.Errorf("mtproto: server key share: %w", err)
	}
	ext := []byte{0x00, 0x33, 0x00, 0x24, 0x00, 0x1d, 0x00, 0x20}
	ext = append(ext, key[:]...)
	ext = append(ext, 0x00, 0x2b, 0x00, 0x02, 0x03, 0x04)
	body = binary.BigEndian.AppendUint16(body, uint16(len(ext)))
	body = append(body, ext...)

	out := make([]byte, 0, 9+len(body)+6+5+certSize)
	out = append(out, RecordHandshake, 3, 3)
	out = binary.BigEndian.AppendUint16(out, uint16(4+len(body)))
	out = append(out, 2, byte(len(body)>>16), byte(len(body)>>8), byte(len(body)))
	out = append(out, body...)
	out = append(out, recordChangeCipher, 3, 3, 0, 1, 1)
	out = append(out, recordAppData, 3, 3)
	out = binary.BigEndian.AppendUint16(out, uint16(certSize))
	start := len(out)
	out = append(out, make([]byte, certSize)...)
	if _, err := io.ReadFull(rand, out[start:]); err != nil {
		return nil, fmt.Errorf("mtproto: server hello padding: %w", err)
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(h.Random[:])
	mac.Write(out)
	copy(out[helloRandomOffset:helloRandomOffset+32], mac.Sum(nil))
	return out, nil
}
