package keyring

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
)

// Cheap parameters for fuzzing: the parsers and bounds are the real ones,
// only the limits are lowered so each input costs microseconds.
var (
	fuzzScrypt    = scryptParams{logN: 4, r: 1, p: 1}
	fuzzKDFLimits = kdfLimits{maxLogN: 5, maxR: 2, maxP: 2, maxMem: 1 << 13, maxWork: 1 << 14}
	fuzzArgon     = argonLimits{maxMemory: 256, maxTime: 2, maxThreads: 2, maxEncoded: 256}
)

func FuzzDecrypt(f *testing.F) {
	const pass = "fuzz"
	pk, err := newPassKey([]byte(pass), detRand(1), fuzzScrypt)
	if err != nil {
		f.Fatal(err)
	}
	for _, n := range []int{0, 1, 100, ChunkSize, ChunkSize + 3} {
		var buf bytes.Buffer
		w, _ := Encrypt(&buf, pk, detRand(byte(n)))
		w.Write(plaintext(n, 1))
		w.Close()
		f.Add(buf.Bytes())
		f.Add(buf.Bytes()[:buf.Len()-1])
	}
	f.Add([]byte(BackupMagic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, blob []byte) {
		r, err := decrypt(bytes.NewReader(blob), fuzzKDFLimits, func(sp scryptParams, salt []byte) (Key, error) {
			return deriveScrypt([]byte(pass), salt, sp)
		})
		if err != nil {
			checkBackupErr(t, err)
			return
		}
		out, err := io.ReadAll(r)
		if err != nil {
			checkBackupErr(t, err)
			return
		}
		if len(blob) != wantLen(len(out)) {
			t.Fatalf("accepted %d bytes giving %d bytes of plaintext", len(blob), len(out))
		}
	})
}

func checkBackupErr(t *testing.T, err error) {
	for _, s := range []error{ErrNotBackup, ErrBadPassphrase, ErrCorrupt, ErrTruncated} {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("error %v is none of the sentinels", err)
}

func FuzzParseAPIToken(f *testing.F) {
	_, _, tok, _ := NewAPIToken(detRand(1))
	f.Add(tok)
	f.Add("usp_aaaaaaaaaaaaaaaa_" + "77777777777777777777777777777777")
	f.Add("usp_")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		id, secret, err := ParseAPIToken(s)
		if err != nil {
			if !errors.Is(err, ErrBadToken) {
				t.Fatalf("error %v", err)
			}
			return
		}
		if TokenPrefix+id+"_"+secret != s || len(id) != TokenIDLen || len(secret) != TokenSecretLen {
			t.Fatalf("parse of %q gives %q %q", s, id, secret)
		}
		if !isB32(id) || !isB32(secret) {
			t.Fatal("non-base32 accepted")
		}
	})
}

func FuzzOpen(f *testing.F) {
	k := testKey(f, 1)
	for i, pt := range []string{"", "x", "a 64-byte secret ..............................................."} {
		blob, _ := Seal(k, detRand(byte(i)), "wg_key", "k_1", []byte(pt))
		f.Add(blob, "wg_key", "k_1")
		f.Add(blob, "wg_key", "k_2")
	}
	f.Add([]byte{1}, "a", "b")
	f.Fuzz(func(t *testing.T, blob []byte, typ, id string) {
		pt, err := Open(k, typ, id, blob)
		if err != nil {
			if !errors.Is(err, ErrOpen) || pt != nil {
				t.Fatalf("Open: %v", err)
			}
		} else {
			// Only a genuine seal opens: resealing with its nonce gives it back.
			again, err := Seal(k, bytes.NewReader(blob[1:1+nonceSize]), typ, id, pt)
			if err != nil || !bytes.Equal(again, blob) {
				t.Fatal("opened a blob Seal did not make")
			}
		}
		if typ == "" || id == "" {
			return
		}
		sealed, err := Seal(k, nil, typ, id, blob)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Open(k, typ, id, sealed)
		if err != nil || !bytes.Equal(got, blob) {
			t.Fatalf("round trip: %v", err)
		}
		if _, err := Open(k, typ, id+"x", sealed); !errors.Is(err, ErrOpen) {
			t.Fatal("opened under another id")
		}
		if _, err := Open(k, typ+"x", id, sealed); !errors.Is(err, ErrOpen) {
			t.Fatal("opened under another type")
		}
	})
}

func FuzzVerifyPassword(f *testing.F) {
	h, _ := hashPassword(detRand(1), "pw", cheapArgon)
	f.Add(h, "pw")
	f.Add(h, "px")
	f.Add("$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4", "password")
	f.Add("$argon2id$v=19$m=4294967295,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4", "password")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, encoded, password string) {
		_, err := verifyPassword(encoded, password, fuzzArgon)
		if err != nil {
			if !errors.Is(err, ErrBadHash) {
				t.Fatalf("error %v", err)
			}
			return
		}
		// Whatever parses is in canonical form and within bounds.
		p, salt, hash, err := parsePHC(encoded, fuzzArgon)
		if err != nil {
			t.Fatal(err)
		}
		if p.memory > fuzzArgon.maxMemory || p.time > fuzzArgon.maxTime || uint32(p.threads) > fuzzArgon.maxThreads {
			t.Fatalf("params %+v out of bounds", p)
		}
		canon := fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", p.memory, p.time, p.threads,
			b64.EncodeToString(salt), b64.EncodeToString(hash))
		if canon != encoded {
			t.Fatalf("accepted non-canonical %q (canonical %q)", encoded, canon)
		}
	})
}
