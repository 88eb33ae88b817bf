package keyring

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestSealRoundTrip(t *testing.T) {
	k := testKey(t, 1)
	for _, n := range []int{0, 1, 15, 16, 17, 32, 64, 1000, 1 << 16} {
		pt := bytes.Repeat([]byte{byte(n)}, n)
		blob, err := Seal(k, nil, "wg_key", "k_123", pt)
		if err != nil {
			t.Fatal(err)
		}
		if len(blob) != n+SealOverhead || blob[0] != sealVersion {
			t.Fatalf("len %d → blob %d bytes, version %d", n, len(blob), blob[0])
		}
		got, err := Open(k, "wg_key", "k_123", blob)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("len %d: %v", n, err)
		}
	}
	a, _ := Seal(k, nil, "t", "i", []byte("same"))
	b, _ := Seal(k, nil, "t", "i", []byte("same"))
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same plaintext are equal: nonce reused")
	}
}

func TestSealTamperEveryByte(t *testing.T) {
	k := testKey(t, 2)
	pt := []byte("private key material, 64 bytes long.............................")
	blob, err := Seal(k, detRand(1), "mtproto_secret", "s_9", pt)
	if err != nil {
		t.Fatal(err)
	}
	region := func(i int) string {
		switch {
		case i == 0:
			return "version"
		case i < 1+nonceSize:
			return "nonce"
		case i < len(blob)-tagSize:
			return "ciphertext"
		}
		return "tag"
	}
	for i := range blob {
		for _, bit := range []byte{0x01, 0x80} {
			bad := bytes.Clone(blob)
			bad[i] ^= bit
			got, err := Open(k, "mtproto_secret", "s_9", bad)
			if !errors.Is(err, ErrOpen) || got != nil {
				t.Fatalf("%s byte %d flipped: %v", region(i), i, err)
			}
			if bytes.Contains([]byte(err.Error()), pt[:8]) {
				t.Fatal("error leaks plaintext")
			}
		}
	}
	for n := 0; n < len(blob); n++ {
		if _, err := Open(k, "mtproto_secret", "s_9", blob[:n]); !errors.Is(err, ErrOpen) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
	if _, err := Open(k, "mtproto_secret", "s_9", append(bytes.Clone(blob), 0)); !errors.Is(err, ErrOpen) {
		t.Fatalf("extended: %v", err)
	}
}

func TestSealBinding(t *testing.T) {
	k := testKey(t, 3)
	blob, _ := Seal(k, nil, "user_pii", "u_1", []byte("alice@example.org"))
	for _, c := range []struct{ typ, id string }{
		{"user_pii", "u_2"}, {"user_pii2", "u_1"}, {"wg_key", "u_1"},
		{"user_pii", "u_1 "}, {"User_pii", "u_1"}, {"user_piiu_1", ""}, {"", "user_piiu_1"},
		{"user_pi", "iu_1"}, {"user_pii\x00", "u_1"}, {"", ""},
	} {
		if _, err := Open(k, c.typ, c.id, blob); !errors.Is(err, ErrOpen) {
			t.Errorf("opened as (%q, %q): %v", c.typ, c.id, err)
		}
	}
	// Length prefixes keep ("ab","c") and ("a","bc") apart.
	b2, _ := Seal(k, nil, "ab", "c", []byte("x"))
	if _, err := Open(k, "a", "bc", b2); !errors.Is(err, ErrOpen) {
		t.Error("field boundary is not bound")
	}
	if _, err := Open(testKey(t, 4), "user_pii", "u_1", blob); !errors.Is(err, ErrOpen) {
		t.Error("opened with another key")
	}
	if _, err := Seal(k, nil, "", "x", nil); err == nil {
		t.Error("empty record type accepted")
	}
	if _, err := Seal(k, nil, "x", "", nil); err == nil {
		t.Error("empty record id accepted")
	}
	if _, err := Seal(k, errReader{errors.New("boom")}, "x", "y", nil); err == nil {
		t.Error("failing rand accepted")
	}
}

func TestWrapUnwrap(t *testing.T) {
	node, data := testKey(t, 5), testKey(t, 6)
	blob, err := Wrap(node, data, "data-key", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(blob) != WrappedKeySize {
		t.Fatalf("wrapped size %d", len(blob))
	}
	got, err := Unwrap(node, blob, "data-key")
	if err != nil || !got.Equal(data) {
		t.Fatalf("unwrap: %v", err)
	}
	if _, err := Unwrap(node, blob, "user/1"); !errors.Is(err, ErrOpen) {
		t.Errorf("wrong label: %v", err)
	}
	if _, err := Unwrap(data, blob, "data-key"); !errors.Is(err, ErrOpen) {
		t.Errorf("wrong kek: %v", err)
	}
	if _, err := Unwrap(node, blob, ""); !errors.Is(err, ErrOpen) {
		t.Errorf("empty label: %v", err)
	}
	if _, err := Wrap(node, data, "", nil); err == nil {
		t.Error("empty label accepted")
	}
	for i := range blob {
		bad := bytes.Clone(blob)
		bad[i] ^= 0x10
		if _, err := Unwrap(node, bad, "data-key"); !errors.Is(err, ErrOpen) {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
	if _, err := Unwrap(node, blob[:len(blob)-1], "data-key"); !errors.Is(err, ErrOpen) {
		t.Error("short blob")
	}

	// A wrapped key and a sealed 32-byte secret never open as each other,
	// even with matching strings.
	sealed, _ := Seal(node, nil, "data-key", "x", data[:])
	if _, err := Unwrap(node, sealed, "data-key"); !errors.Is(err, ErrOpen) {
		t.Error("sealed blob unwrapped")
	}
	if _, err := Open(node, "data-key", "", blob); !errors.Is(err, ErrOpen) {
		t.Error("wrapped blob opened")
	}
	if msg := err2str(Unwrap(node, blob, "nope")); strings.Contains(msg, string(data[:4])) {
		t.Error("error leaks key")
	}
}

func err2str(_ Key, err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestSealerConcurrent(t *testing.T) {
	k := testKey(t, 7)
	s := NewSealer(k)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				id := fmt.Sprintf("r_%d_%d", g, i)
				pt := []byte(id + " secret")
				blob, err := s.Seal(nil, "t", id, pt)
				if err != nil {
					t.Error(err)
					return
				}
				// Interoperates with the package-level functions.
				got, err := Open(k, "t", id, blob)
				if err != nil || !bytes.Equal(got, pt) {
					t.Errorf("open: %v", err)
					return
				}
				if got, err := s.Open("t", id, blob); err != nil || !bytes.Equal(got, pt) {
					t.Errorf("sealer open: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
