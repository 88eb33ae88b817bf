package wire

import (
	"bytes"
	"io"
	"testing"
	"time"
)

func FuzzClientHello(f *testing.F) {
	key := bytes.Repeat([]byte{7}, 16)
	msg := BuildHello("cloak.example", 300)
	SignHello(msg, HelloRecords(msg, 1<<14), key, time.Unix(1e9, 0))
	f.Add(HelloRecords(msg, 1<<14))
	f.Add(HelloRecords(msg, 100))
	f.Add([]byte{RecordHandshake, 3, 1, 0, 4, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		h, err := ReadClientHello(bytes.NewReader(in))
		if !bytes.HasPrefix(in, h.Raw) {
			t.Fatal("Raw is not what was read")
		}
		if err != nil {
			return
		}
		h.Verify(key)
		if _, err := ServerHello(bytes.NewReader(make([]byte, 64)), h, key, 10); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzInit(f *testing.F) {
	f.Add(make([]byte, InitLen), []byte("0123456789abcdef"))
	f.Fuzz(func(t *testing.T, raw, secret []byte) {
		if len(raw) < InitLen || len(secret) != 16 && len(secret) != 0 {
			return
		}
		var init [InitLen]byte
		copy(init[:], raw)
		if len(secret) == 0 {
			secret = nil
		}
		_, err := ParseInit(&init, secret)
		if (err == nil) != TagMatches(&init, secret) {
			t.Fatalf("ParseInit %v disagrees with TagMatches", err)
		}
	})
}

func FuzzRecords(f *testing.F) {
	f.Add([]byte{recordChangeCipher, 3, 3, 0, 1, 1, recordAppData, 3, 3, 0, 2, 'h', 'i'})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewRecordReader(bytes.NewReader(in))
		n, _ := io.Copy(io.Discard, r)
		if n > int64(len(in)) {
			t.Fatal("more payload than input")
		}
	})
}
