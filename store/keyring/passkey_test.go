package keyring

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func TestPassKeyMatches(t *testing.T) {
	pk := testPassKey(t, "operator passphrase")
	if !pk.Matches([]byte("operator passphrase")) || pk.Matches([]byte("operator passphrasE")) {
		t.Fatal("Matches")
	}
	if (PassKey{}).Matches(nil) {
		t.Fatal("zero PassKey matches")
	}
	pk2 := testPassKey(t, "operator passphrase")
	if pk2.salt == pk.salt || pk2.key.Equal(pk.key) {
		t.Fatal("salt not random")
	}
}

// scrypt's own test vector (RFC 7914 §12, N=16 r=1 p=1, empty inputs):
// our derivation is plain scrypt.
func TestDeriveScryptVector(t *testing.T) {
	k, err := deriveScrypt(nil, nil, scryptParams{logN: 4, r: 1, p: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hexs(k[:]), "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442"; got != want {
		t.Fatalf("scrypt vector: %s", got)
	}
}

func TestPassKeyMarshal(t *testing.T) {
	pk := testPassKey(t, "pw")
	b, err := pk.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != passKeySize {
		t.Fatalf("size %d", len(b))
	}
	got, err := UnmarshalPassKey(b)
	if err != nil || got != pk {
		t.Fatalf("round trip: %v", err)
	}
	if !got.Matches([]byte("pw")) {
		t.Fatal("unmarshalled key does not match passphrase")
	}
	if _, err := (PassKey{}).MarshalBinary(); err == nil {
		t.Fatal("zero PassKey marshalled")
	}
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(b)) }
	for name, bad := range map[string][]byte{
		"empty":    nil,
		"short":    b[:len(b)-1],
		"long":     append(bytes.Clone(b), 0),
		"version":  mut(func(b []byte) []byte { b[0] = 2; return b }),
		"kdf":      mut(func(b []byte) []byte { b[1] = 9; return b }),
		"logN 0":   mut(func(b []byte) []byte { b[2] = 0; return b }),
		"logN 21":  mut(func(b []byte) []byte { b[2] = 21; return b }),
		"logN 255": mut(func(b []byte) []byte { b[2] = 255; return b }),
		"r 0":      mut(func(b []byte) []byte { binary.BigEndian.PutUint32(b[3:], 0); return b }),
		"r huge":   mut(func(b []byte) []byte { binary.BigEndian.PutUint32(b[3:], 1<<31); return b }),
		"p 0":      mut(func(b []byte) []byte { binary.BigEndian.PutUint32(b[7:], 0); return b }),
		"p huge":   mut(func(b []byte) []byte { binary.BigEndian.PutUint32(b[7:], 1<<31); return b }),
		"mem":      mut(func(b []byte) []byte { b[2] = 20; binary.BigEndian.PutUint32(b[3:], 16); return b }),
		"work":     mut(func(b []byte) []byte { b[2] = 20; binary.BigEndian.PutUint32(b[7:], 16); return b }),
	} {
		if _, err := UnmarshalPassKey(bad); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}
