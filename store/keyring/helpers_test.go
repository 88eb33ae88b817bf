package keyring

import (
	"io"
	"math/rand/v2"
	"testing"
)

// detRand is a deterministic randomness source for tests.
func detRand(seed byte) io.Reader {
	var s [32]byte
	s[0] = seed
	return rand.NewChaCha8(s)
}

// cheapScrypt keeps tests fast; the public default stays N=2^15.
var cheapScrypt = scryptParams{logN: 10, r: 8, p: 1}

// cheapArgon keeps tests fast; the public default stays m=19456,t=2,p=1.
var cheapArgon = argonParams{memory: 64, time: 1, threads: 1}

func testKey(t testing.TB, seed byte) Key {
	t.Helper()
	k, err := GenerateKey(detRand(seed))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testPassKey(t testing.TB, pass string) PassKey {
	t.Helper()
	pk, err := newPassKey([]byte(pass), nil, cheapScrypt)
	if err != nil {
		t.Fatal(err)
	}
	return pk
}

// errReader fails every read.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
