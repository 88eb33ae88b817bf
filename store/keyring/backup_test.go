package keyring

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

const sealedChunk = ChunkSize + tagSize

func plaintext(n int, seed byte) []byte {
	b := make([]byte, n)
	io.ReadFull(detRand(seed), b)
	return b
}

// encrypt writes data through Encrypt in writes of the sizes sizes() gives.
func encrypt(t testing.TB, pk PassKey, data []byte, sizes func() int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := Encrypt(&buf, pk, nil)
	if err != nil {
		t.Fatal(err)
	}
	for len(data) > 0 {
		n := len(data)
		if sizes != nil {
			n = min(n, sizes())
		}
		m, err := w.Write(data[:n])
		if err != nil || m != n {
			t.Fatalf("write: %d %v", m, err)
		}
		data = data[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func decryptAll(blob []byte, pass string) ([]byte, error) {
	r, err := Decrypt(bytes.NewReader(blob), []byte(pass))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func decryptPK(blob []byte, pk PassKey) ([]byte, error) {
	r, err := DecryptPassKey(bytes.NewReader(blob), pk)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func wantLen(n int) int { return headerSize + n + (n/ChunkSize+1)*tagSize }

func TestBackupRoundTrip(t *testing.T) {
	pk := testPassKey(t, "correct horse battery staple")
	rng := rand.New(rand.NewPCG(1, 2))
	patterns := map[string]func() int{
		"whole":  nil,
		"random": func() int { return 1 + rng.IntN(3*ChunkSize) },
		"small":  func() int { return 1 + rng.IntN(100) },
		"chunk":  func() int { return ChunkSize },
	}
	for _, n := range []int{0, 1, 100, ChunkSize - 1, ChunkSize, ChunkSize + 1, 2 * ChunkSize,
		3*ChunkSize - 7, 1<<20 + 12345, 1 << 20} {
		for name, sizes := range patterns {
			t.Run(fmt.Sprintf("%d/%s", n, name), func(t *testing.T) {
				data := plaintext(n, byte(n))
				blob := encrypt(t, pk, data, sizes)
				if len(blob) != wantLen(n) {
					t.Fatalf("blob %d bytes, want %d", len(blob), wantLen(n))
				}
				got, err := decryptAll(blob, "correct horse battery staple")
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("decrypt: %v (got %d bytes)", err, len(got))
				}
			})
		}
	}
}

func TestBackupReaderBehaviour(t *testing.T) {
	pk := testPassKey(t, "pw")
	data := plaintext(2*ChunkSize+777, 3)
	blob := encrypt(t, pk, data, nil)
	// Underlying reader returning one byte at a time, or errors with data.
	for name, src := range map[string]func() io.Reader{
		"onebyte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(blob)) },
		"half":    func() io.Reader { return iotest.HalfReader(bytes.NewReader(blob)) },
		"dataerr": func() io.Reader { return iotest.DataErrReader(bytes.NewReader(blob)) },
	} {
		r, err := Decrypt(src(), []byte("pw"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := iotest.TestReader(r, data); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// Small reads from the plaintext reader.
	r, _ := DecryptPassKey(bytes.NewReader(blob), pk)
	got, err := io.ReadAll(iotest.OneByteReader(r))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("one-byte reads: %v", err)
	}
}

func TestBackupDefaultParams(t *testing.T) {
	pk, err := NewPassKey([]byte("xxxx-yyyy"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if pk.params != (scryptParams{logN: 15, r: 8, p: 1}) {
		t.Fatalf("default params %+v", pk.params)
	}
	b, _ := pk.MarshalBinary()
	pk2, err := UnmarshalPassKey(b)
	if err != nil {
		t.Fatal(err)
	}
	data := plaintext(100000, 9)
	blob := encrypt(t, pk2, data, nil)
	if blob[offLogN] != 15 || binary.BigEndian.Uint32(blob[offR:]) != 8 || binary.BigEndian.Uint32(blob[offP:]) != 1 {
		t.Fatal("header does not carry the default scrypt params")
	}
	got, err := decryptAll(blob, "xxxx-yyyy")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("decrypt: %v", err)
	}
	if _, err := decryptAll(blob, "xxxx-yyyz"); !errors.Is(err, ErrBadPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
}

func TestBackupHeaderLayout(t *testing.T) {
	pk := testPassKey(t, "pw")
	a := encrypt(t, pk, []byte("same"), nil)
	b := encrypt(t, pk, []byte("same"), nil)
	if string(a[:len(BackupMagic)]) != BackupMagic || a[offVersion] != 1 || a[offKDF] != 1 {
		t.Fatalf("header %x", a[:headerSize])
	}
	if !bytes.Equal(a[offSalt:offFileNonce], pk.salt[:]) {
		t.Fatal("salt not in header")
	}
	if bytes.Equal(a[offFileNonce:offCheck], b[offFileNonce:offCheck]) || bytes.Equal(a[headerSize:], b[headerSize:]) {
		t.Fatal("two backups under one PassKey share a file nonce or ciphertext")
	}
}

func TestBackupWrongPassphrase(t *testing.T) {
	pk := testPassKey(t, "right")
	blob := encrypt(t, pk, plaintext(5000, 1), nil)
	for _, p := range []string{"", "wrong", "right ", "Right", "righ"} {
		r, err := Decrypt(bytes.NewReader(blob), []byte(p))
		if !errors.Is(err, ErrBadPassphrase) || r != nil {
			t.Errorf("%q: %v", p, err)
		}
	}
	other := testPassKey(t, "right") // same passphrase, another salt
	if _, err := decryptPK(blob, other); !errors.Is(err, ErrBadPassphrase) {
		t.Errorf("other PassKey: %v", err)
	}
	if _, err := decryptPK(blob, PassKey{}); !errors.Is(err, ErrBadPassphrase) {
		t.Errorf("zero PassKey: %v", err)
	}
	if got, err := decryptPK(blob, pk); err != nil || len(got) != 5000 {
		t.Errorf("own PassKey: %v", err)
	}
}

func TestBackupNotBackup(t *testing.T) {
	for name, in := range map[string][]byte{
		"empty":  nil,
		"zeros":  make([]byte, 1000),
		"gzip":   {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3},
		"bbolt":  plaintext(4096, 1),
		"almost": []byte("USIPIPO-BACKUQ" + string(make([]byte, 200))),
		"lower":  []byte("usipipo-backup" + string(make([]byte, 200))),
		"other":  []byte("X"),
	} {
		if _, err := decryptAll(in, "pw"); !errors.Is(err, ErrNotBackup) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := decryptAll([]byte("USIPIPO-"), "pw"); !errors.Is(err, ErrTruncated) {
		t.Errorf("magic prefix: %v", err)
	}
}

func TestBackupTamperHeader(t *testing.T) {
	pk := testPassKey(t, "pw")
	blob := encrypt(t, pk, plaintext(3000, 2), nil)
	for i := 0; i < headerSize; i++ {
		for _, bit := range []byte{0x01, 0x80} {
			bad := bytes.Clone(blob)
			bad[i] ^= bit
			_, err := decryptAll(bad, "pw")
			var ok bool
			switch {
			case i < offVersion:
				ok = errors.Is(err, ErrNotBackup)
			case i < offLogN: // version, kdf
				ok = errors.Is(err, ErrCorrupt)
			case i < offSalt: // params: out of bounds, or a different key
				ok = errors.Is(err, ErrCorrupt) || errors.Is(err, ErrBadPassphrase)
			default: // salt, file nonce, key check
				ok = errors.Is(err, ErrBadPassphrase)
			}
			if !ok {
				t.Fatalf("header byte %d ^%#x: %v", i, bit, err)
			}
		}
	}
}

// The header is also the chunks' AAD: a header that passed the key check
// but differs (which needs the key) still fails on the first chunk.
func TestBackupHeaderBoundAsAAD(t *testing.T) {
	pk := testPassKey(t, "pw")
	blob := encrypt(t, pk, plaintext(3000, 2), nil)
	stream, _ := fileKeys(pk.key, blob[offFileNonce:offCheck])
	hdr := bytes.Clone(blob[:headerSize])
	hdr[offVersion+1] ^= 0xff
	d := &decReader{r: bytes.NewReader(blob[headerSize:]), aead: newGCM(stream), header: hdr, buf: make([]byte, sealedChunk)}
	if _, err := io.ReadAll(d); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("altered AAD: %v", err)
	}
	d = &decReader{r: bytes.NewReader(blob[headerSize:]), aead: newGCM(stream), header: blob[:headerSize], buf: make([]byte, sealedChunk)}
	if _, err := io.ReadAll(d); err != nil {
		t.Fatalf("control: %v", err)
	}
}

func TestBackupHostileParams(t *testing.T) {
	pk := testPassKey(t, "pw")
	blob := encrypt(t, pk, nil, nil)
	for name, f := range map[string]func(b []byte){
		"logN 21":  func(b []byte) { b[offLogN] = 21 },
		"logN 64":  func(b []byte) { b[offLogN] = 64 },
		"logN 255": func(b []byte) { b[offLogN] = 255 },
		"logN 0":   func(b []byte) { b[offLogN] = 0 },
		"r 0":      func(b []byte) { binary.BigEndian.PutUint32(b[offR:], 0) },
		"r 2^31":   func(b []byte) { binary.BigEndian.PutUint32(b[offR:], 1<<31) },
		"p 0":      func(b []byte) { binary.BigEndian.PutUint32(b[offP:], 0) },
		"p max":    func(b []byte) { binary.BigEndian.PutUint32(b[offP:], ^uint32(0)) },
		"1 GiB+":   func(b []byte) { b[offLogN] = 20; binary.BigEndian.PutUint32(b[offR:], 9) },
		"work":     func(b []byte) { b[offLogN] = 20; binary.BigEndian.PutUint32(b[offP:], 5) },
		"version":  func(b []byte) { b[offVersion] = 2 },
		"kdf":      func(b []byte) { b[offKDF] = 2 },
	} {
		bad := bytes.Clone(blob)
		f(bad)
		if _, err := decryptAll(bad, "pw"); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestBackupTamperChunks(t *testing.T) {
	pk := testPassKey(t, "pw")

	// A one-chunk backup: every byte after the header.
	small := encrypt(t, pk, plaintext(300, 4), nil)
	for i := headerSize; i < len(small); i++ {
		bad := bytes.Clone(small)
		bad[i] ^= 0x40
		if _, err := decryptPK(bad, pk); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("byte %d: %v", i, err)
		}
	}

	// A three-chunk backup: the ciphertext and tag edges of every chunk.
	data := plaintext(2*ChunkSize+1000, 5)
	blob := encrypt(t, pk, data, nil)
	for c := 0; c < 3; c++ {
		start := headerSize + c*sealedChunk
		end := min(start+sealedChunk, len(blob))
		for _, i := range []int{start, start + 1, (start + end) / 2, end - tagSize - 1, end - tagSize, end - tagSize/2, end - 1} {
			bad := bytes.Clone(blob)
			bad[i] ^= 0x01
			got, err := decryptPK(bad, pk)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("chunk %d byte %d: %v", c, i, err)
			}
			// Only whole authenticated chunks come out before the error.
			if len(got) != c*ChunkSize || !bytes.Equal(got, data[:len(got)]) {
				t.Fatalf("chunk %d: %d bytes released before the error", c, len(got))
			}
		}
	}
}

func TestBackupReorderSpliceExtend(t *testing.T) {
	pk := testPassKey(t, "pw")
	data := plaintext(3*ChunkSize+100, 6)
	blob := encrypt(t, pk, data, nil)
	hdr := blob[:headerSize]
	chunk := func(b []byte, i int) []byte {
		s := headerSize + i*sealedChunk
		return b[s:min(s+sealedChunk, len(b))]
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	other := encrypt(t, pk, data, nil) // same PassKey and data, another file nonce

	cases := map[string][]byte{
		"swap 0 1":       cat(hdr, chunk(blob, 1), chunk(blob, 0), chunk(blob, 2), chunk(blob, 3)),
		"swap 1 2":       cat(hdr, chunk(blob, 0), chunk(blob, 2), chunk(blob, 1), chunk(blob, 3)),
		"drop 1":         cat(hdr, chunk(blob, 0), chunk(blob, 2), chunk(blob, 3)),
		"drop 2":         cat(hdr, chunk(blob, 0), chunk(blob, 1), chunk(blob, 3)),
		"dup 0":          cat(hdr, chunk(blob, 0), chunk(blob, 0), chunk(blob, 1), chunk(blob, 2), chunk(blob, 3)),
		"final early":    cat(hdr, chunk(blob, 3)),
		"splice other":   cat(hdr, chunk(blob, 0), chunk(other, 1), chunk(blob, 2), chunk(blob, 3)),
		"other header":   cat(other[:headerSize], blob[headerSize:]),
		"trailing byte":  cat(blob, []byte{0}),
		"trailing blob":  cat(blob, blob),
		"trailing chunk": cat(blob, chunk(blob, 0)),
	}
	for name, bad := range cases {
		if _, err := decryptPK(bad, pk); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestBackupTruncation(t *testing.T) {
	pk := testPassKey(t, "pw")
	for _, n := range []int{0, 500, 3 * ChunkSize, 2*ChunkSize + 500} {
		data := plaintext(n, 7)
		blob := encrypt(t, pk, data, nil)
		chunks := n/ChunkSize + 1
		// Every chunk boundary: after the header, after each chunk but the last.
		for c := 0; c < chunks; c++ {
			cut := headerSize + c*sealedChunk
			got, err := decryptPK(blob[:cut], pk)
			if !errors.Is(err, ErrTruncated) || errors.Is(err, ErrCorrupt) {
				t.Fatalf("n=%d cut after %d chunks: %v", n, c, err)
			}
			if !bytes.Equal(got, data[:c*ChunkSize]) {
				t.Fatalf("n=%d cut after %d chunks: %d bytes out", n, c, len(got))
			}
		}
		// Inside every chunk.
		for c := 0; c < chunks; c++ {
			start := headerSize + c*sealedChunk
			size := min(sealedChunk, len(blob)-start)
			for _, off := range []int{1, tagSize - 1, tagSize, tagSize + 1, size / 2, size - 1} {
				if off <= 0 || off >= size {
					continue
				}
				got, err := decryptPK(blob[:start+off], pk)
				if !errors.Is(err, ErrTruncated) {
					t.Fatalf("n=%d cut %d into chunk %d: %v", n, off, c, err)
				}
				if !bytes.Equal(got, data[:c*ChunkSize]) {
					t.Fatalf("n=%d cut %d into chunk %d: %d bytes out", n, off, c, len(got))
				}
			}
		}
		// Inside the header (after the magic: before it is ErrNotBackup
		// when empty, ErrTruncated otherwise).
		for cut := 1; cut < headerSize; cut++ {
			if _, err := decryptPK(blob[:cut], pk); !errors.Is(err, ErrTruncated) {
				t.Fatalf("cut %d into header: %v", cut, err)
			}
		}
		if _, err := decryptPK(nil, pk); !errors.Is(err, ErrNotBackup) {
			t.Fatalf("empty: %v", err)
		}
	}
}

func TestBackupWithPassphraseTruncated(t *testing.T) {
	// The passphrase path too, not only DecryptPassKey.
	pk := testPassKey(t, "pw")
	blob := encrypt(t, pk, plaintext(ChunkSize+5, 1), nil)
	if _, err := decryptAll(blob[:headerSize+sealedChunk], "pw"); !errors.Is(err, ErrTruncated) {
		t.Fatal(err)
	}
	if _, err := decryptAll(blob[:len(blob)-1], "pw"); !errors.Is(err, ErrTruncated) {
		t.Fatal(err)
	}
}

type failAfter struct {
	r io.Reader
	n int
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("disk on fire")
	}
	p = p[:min(len(p), f.n)]
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

func TestBackupReadErrors(t *testing.T) {
	pk := testPassKey(t, "pw")
	blob := encrypt(t, pk, plaintext(2*ChunkSize, 1), nil)
	for _, at := range []int{0, 5, headerSize - 1, headerSize + 10, headerSize + sealedChunk} {
		r, err := DecryptPassKey(&failAfter{bytes.NewReader(blob), at}, pk)
		if err == nil {
			_, err = io.ReadAll(r)
			// Sticky.
			if _, err2 := r.Read(make([]byte, 10)); err2 == nil || err2.Error() != err.Error() {
				t.Errorf("error not sticky: %v then %v", err, err2)
			}
		}
		if err == nil || errors.Is(err, ErrCorrupt) || errors.Is(err, ErrTruncated) || errors.Is(err, ErrNotBackup) {
			t.Errorf("read error at %d reported as %v", at, err)
		}
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("disk full")
	}
	f.n--
	return len(p), nil
}

func TestEncryptWriter(t *testing.T) {
	pk := testPassKey(t, "pw")
	if _, err := Encrypt(io.Discard, PassKey{}, nil); err == nil {
		t.Fatal("zero PassKey accepted")
	}
	if _, err := Encrypt(&failWriter{0}, pk, nil); err == nil {
		t.Fatal("header write error lost")
	}
	if _, err := Encrypt(io.Discard, pk, errReader{errors.New("boom")}); err == nil {
		t.Fatal("rand error lost")
	}

	// Empty backup: Close alone writes the final chunk.
	var buf bytes.Buffer
	w, _ := Encrypt(&buf, pk, nil)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if buf.Len() != headerSize+tagSize {
		t.Fatalf("empty backup is %d bytes", buf.Len())
	}
	if n, err := w.Write([]byte("x")); n != 0 || err == nil {
		t.Fatal("write after Close accepted")
	}
	if got, err := decryptPK(buf.Bytes(), pk); err != nil || len(got) != 0 {
		t.Fatalf("empty: %v", err)
	}
	// Without Close there is no final chunk: truncated.
	buf.Reset()
	w, _ = Encrypt(&buf, pk, nil)
	w.Write(make([]byte, ChunkSize+1))
	if _, err := decryptPK(buf.Bytes(), pk); !errors.Is(err, ErrTruncated) {
		t.Fatalf("unclosed: %v", err)
	}

	// A chunk write error is sticky and reported by Close.
	w, _ = Encrypt(&failWriter{1}, pk, nil) // header ok, first chunk fails
	if _, err := w.Write(make([]byte, ChunkSize)); err == nil {
		t.Fatal("chunk write error lost")
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Fatal("error not sticky")
	}
	if err := w.Close(); err == nil {
		t.Fatal("Close hides the write error")
	}
	w, _ = Encrypt(&failWriter{1}, pk, nil)
	w.Write([]byte("x"))
	if err := w.Close(); err == nil {
		t.Fatal("final chunk write error lost")
	}
}
