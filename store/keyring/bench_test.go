package keyring

import (
	"bytes"
	"io"
	"testing"
)

var secret64 = bytes.Repeat([]byte("s"), 64)

func BenchmarkSeal(b *testing.B) {
	k := testKey(b, 1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Seal(k, nil, "wg_key", "k_0123456789", secret64); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	k := testKey(b, 1)
	blob, _ := Seal(k, nil, "wg_key", "k_0123456789", secret64)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Open(k, "wg_key", "k_0123456789", blob); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSealerSeal(b *testing.B) {
	s := NewSealer(testKey(b, 1))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Seal(nil, "wg_key", "k_0123456789", secret64); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSealerOpen(b *testing.B) {
	s := NewSealer(testKey(b, 1))
	blob, _ := s.Seal(nil, "wg_key", "k_0123456789", secret64)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Open("wg_key", "k_0123456789", blob); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncrypt(b *testing.B) {
	pk := testPassKey(b, "pw")
	data := plaintext(1<<20, 1)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		w, err := Encrypt(io.Discard, pk, nil)
		if err != nil {
			b.Fatal(err)
		}
		for p := data; len(p) > 0; p = p[32<<10:] { // 32 KiB writes, like io.Copy
			w.Write(p[:32<<10])
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecrypt(b *testing.B) {
	pk := testPassKey(b, "pw")
	data := plaintext(1<<20, 1)
	blob := encrypt(b, pk, data, nil)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := DecryptPassKey(bytes.NewReader(blob), pk)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifySecret(b *testing.B) {
	_, secret, _, _ := NewAPIToken(nil)
	h := HashSecret(secret)
	b.ReportAllocs()
	for b.Loop() {
		if !VerifySecret(h, secret) {
			b.Fatal("mismatch")
		}
	}
}

// BenchmarkVerifyPassword is the cost of one login with the default argon2id
// parameters.
func BenchmarkVerifyPassword(b *testing.B) {
	h, _ := HashPassword(nil, "correct horse")
	b.ReportAllocs()
	for b.Loop() {
		if ok, _ := VerifyPassword(h, "correct horse"); !ok {
			b.Fatal("mismatch")
		}
	}
}

// BenchmarkNewPassKey is the cost of deriving a backup key from a passphrase
// with the default scrypt parameters (once per backup or restore).
func BenchmarkNewPassKey(b *testing.B) {
	for b.Loop() {
		if _, err := NewPassKey([]byte("xxxx-xxxx-xxxx"), nil); err != nil {
			b.Fatal(err)
		}
	}
}
