package wire

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// Client-side FakeTLS hello construction, as Telegram clients sign it:
// tests and benchmarks use it to speak to the proxy without a client.

// BuildHello builds a ClientHello handshake message for sni with a
// padding extension of pad bytes (real clients pad to ~1.8 KiB now).
func BuildHello(sni string, pad int) []byte {
	body := []byte{3, 3}
	body = append(body, make([]byte, 32)...)
	body = append(body, 32)
	sid := make([]byte, 32)
	rand.Read(sid)
	body = append(body, sid...)
	body = append(body, 0, 2, 0x13, 0x01, 1, 0)
	var ext []byte
	name := []byte(sni)
	sn := binary.BigEndian.AppendUint16(nil, uint16(len(name)+3))
	sn = append(sn, 0)
	sn = binary.BigEndian.AppendUint16(sn, uint16(len(name)))
	sn = append(sn, name...)
	ext = append(ext, 0, 0)
	ext = binary.BigEndian.AppendUint16(ext, uint16(len(sn)))
	ext = append(ext, sn...)
	ext = append(ext, 0, 0x15)
	ext = binary.BigEndian.AppendUint16(ext, uint16(pad))
	ext = append(ext, make([]byte, pad)...)
	body = binary.BigEndian.AppendUint16(body, uint16(len(ext)))
	body = append(body, ext...)
	return append([]byte{1, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}, body...)
}

// SignHello sets the random of msg the way Telegram clients do, over the bytes
// of signed (records with the random zeroed), and returns it.
func SignHello(msg, signed, key []byte, ts time.Time) [32]byte {
	mac := hmac.New(sha256.New, key)
	mac.Write(signed)
	var r [32]byte
	mac.Sum(r[:0])
	binary.LittleEndian.PutUint32(r[28:], binary.LittleEndian.Uint32(r[28:])^uint32(ts.Unix()))
	copy(msg[6:38], r[:])
	return r
}

// HelloRecords splits a handshake message into handshake records of size bytes.
func HelloRecords(msg []byte, size int) []byte {
	var out []byte
	for len(msg) > 0 {
		n := min(size, len(msg))
		out = append(out, RecordHandshake, 3, 1, byte(n>>8), byte(n))
		out = append(out, msg[:n]...)
		msg = msg[n:]
	}
	return out
}
