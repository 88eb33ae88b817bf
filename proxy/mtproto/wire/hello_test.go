package wire

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"testing"
	"time"
)

func TestClientHelloSplitAndLarge(t *testing.T) {
	key := make([]byte, 16)
	rand.Read(key)
	for _, tc := range []struct {
		name      string
		pad, size int
		asSent    bool // signed over the records as sent, not as one record
	}{
		{"classic", 200, 1 << 14, false},
		{"chrome-like 1.8k", 1500, 1 << 14, false},
		{"split, one-record signature", 1500, 500, false},
		{"split, as-sent signature", 1500, 500, true},
		{"split tiny", 100, 7, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := BuildHello("cloak.example", tc.pad)
			signed := HelloRecords(msg, 1<<14)
			if tc.asSent {
				signed = HelloRecords(msg, tc.size)
			}
			random := SignHello(msg, signed, key, time.Now())
			h, err := ReadClientHello(bytes.NewReader(HelloRecords(msg, tc.size)))
			if err != nil {
				t.Fatal(err)
			}
			if h.SNI != "cloak.example" || len(h.SessionID) != 32 || h.Random != random {
				t.Fatalf("parsed %q %x", h.SNI, h.SessionID)
			}
			ts, ok := h.Verify(key)
			if !ok || time.Since(ts) > 2*time.Second {
				t.Fatalf("verify: %v %v", ts, ok)
			}
			if _, ok := h.Verify(make([]byte, 16)); ok {
				t.Fatal("verified with a wrong key")
			}
			checkServerHello(t, h, key)
		})
	}
}

// checkServerHello checks our answer as a client does: handshake, change
// cipher spec, application data, and the HMAC in the server random.
func checkServerHello(t *testing.T, h *ClientHello, key []byte) {
	t.Helper()
	out, err := ServerHello(rand.Reader, h, key, 0x123)
	if err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader(out)
	for _, typ := range []byte{RecordHandshake, recordChangeCipher, recordAppData} {
		var hdr [5]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil || hdr[0] != typ {
			t.Fatalf("record %x: %x %v", typ, hdr, err)
		}
		r.Seek(int64(binary.BigEndian.Uint16(hdr[3:])), io.SeekCurrent)
	}
	if r.Len() != 0 {
		t.Fatal("trailing bytes")
	}
	zeroed := bytes.Clone(out)
	clear(zeroed[11:43])
	mac := hmac.New(sha256.New, key)
	mac.Write(h.Random[:])
	mac.Write(zeroed)
	if !bytes.Equal(mac.Sum(nil), out[11:43]) {
		t.Fatal("server random is not the HMAC")
	}
	if !bytes.Equal(out[44:76], h.SessionID) {
		t.Fatal("session id not echoed")
	}
}

func TestNotHello(t *testing.T) {
	for _, in := range [][]byte{
		[]byte("GET / HTTP/1.1\r\n\r\n"),
		{RecordHandshake, 3, 1, 0, 4, 2, 0, 0, 0},   // a ServerHello
		{RecordHandshake, 3, 1, 0xff, 0xff},         // over the size bound
		HelloRecords(BuildHello("x", 10)[:30], 100), // hello length beyond its bytes, then EOF
	} {
		h, err := ReadClientHello(bytes.NewReader(in))
		if err == nil {
			t.Fatalf("%x accepted", in)
		}
		if !bytes.HasPrefix(in, h.Raw) {
			t.Fatalf("raw %x is not a prefix of the input", h.Raw)
		}
	}
}
