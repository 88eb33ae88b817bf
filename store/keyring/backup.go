package keyring

import (
	"bytes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// BackupMagic starts every encrypted backup.
const BackupMagic = "USIPIPO-BACKUP"

const (
	backupVersion = 1
	// ChunkSize is the plaintext size of every backup chunk but the last.
	ChunkSize     = 64 << 10
	fileNonceSize = 32
	checkSize     = 16

	offVersion   = len(BackupMagic)
	offKDF       = offVersion + 1
	offLogN      = offKDF + 1
	offR         = offLogN + 1
	offP         = offR + 4
	offSalt      = offP + 4
	offFileNonce = offSalt + passSaltLen
	offCheck     = offFileNonce + fileNonceSize
	headerSize   = offCheck + checkSize // 89 bytes
)

var errWriterClosed = errors.New("keyring: write to a closed backup writer")

// chunkNonce is the STREAM nonce: 3 zero bytes, the chunk counter as a
// big-endian uint64, and 1 on the final chunk (0 otherwise). The key is
// unique per file, so the counter alone makes every nonce unique.
func chunkNonce(counter uint64, final bool) [nonceSize]byte {
	var n [nonceSize]byte
	binary.BigEndian.PutUint64(n[3:11], counter)
	if final {
		n[11] = 1
	}
	return n
}

// Encrypt writes the backup header to w at once and returns a writer that
// encrypts what is written to it, in 64 KiB chunks, for the passphrase pk
// was derived from. The random per-file nonce comes from r (nil:
// crypto/rand). Close writes the final chunk — also when nothing was
// written — and must be called and checked; it does not close w. The
// returned writer is not safe for concurrent use.
func Encrypt(w io.Writer, pk PassKey, r io.Reader) (io.WriteCloser, error) {
	if !pk.valid() {
		return nil, errors.New("encrypting backup: zero PassKey")
	}
	hdr := make([]byte, headerSize)
	copy(hdr, BackupMagic)
	hdr[offVersion] = backupVersion
	hdr[offKDF] = kdfScrypt
	hdr[offLogN] = pk.params.logN
	binary.BigEndian.PutUint32(hdr[offR:], pk.params.r)
	binary.BigEndian.PutUint32(hdr[offP:], pk.params.p)
	copy(hdr[offSalt:], pk.salt[:])
	if err := readRandom(r, hdr[offFileNonce:offCheck]); err != nil {
		return nil, fmt.Errorf("encrypting backup: %w", err)
	}
	stream, check := fileKeys(pk.key, hdr[offFileNonce:offCheck])
	copy(hdr[offCheck:], check[:])
	if _, err := w.Write(hdr); err != nil {
		return nil, fmt.Errorf("encrypting backup: writing header: %w", err)
	}
	return &encWriter{w: w, aead: newGCM(stream), header: hdr, buf: make([]byte, 0, ChunkSize+tagSize)}, nil
}

type encWriter struct {
	w       io.Writer
	aead    cipher.AEAD
	header  []byte // the AAD of every chunk
	buf     []byte // buffered plaintext, len < ChunkSize between calls
	counter uint64
	err     error // sticky
	closed  bool
}

func (e *encWriter) Write(p []byte) (int, error) {
	if e.closed {
		return 0, errWriterClosed
	}
	if e.err != nil {
		return 0, e.err
	}
	n := 0
	for len(p) > 0 {
		c := copy(e.buf[len(e.buf):ChunkSize], p)
		e.buf = e.buf[:len(e.buf)+c]
		p, n = p[c:], n+c
		// A full chunk goes out at once, so the final chunk is always
		// shorter than ChunkSize: that is how Decrypt knows it is last.
		if len(e.buf) == ChunkSize {
			if err := e.flush(false); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

func (e *encWriter) flush(final bool) error {
	if e.counter == ^uint64(0) {
		e.err = errors.New("encrypting backup: too many chunks")
		return e.err
	}
	nonce := chunkNonce(e.counter, final)
	ct := e.aead.Seal(e.buf[:0], nonce[:], e.buf, e.header)
	if _, err := e.w.Write(ct); err != nil {
		e.err = fmt.Errorf("encrypting backup: %w", err)
		return e.err
	}
	e.counter++
	e.buf = e.buf[:0]
	return nil
}

// Close writes the final chunk. Calling it again returns the first result.
func (e *encWriter) Close() error {
	if e.closed {
		return e.err
	}
	e.closed = true
	if e.err != nil {
		return e.err
	}
	err := e.flush(true)
	clear(e.buf[:cap(e.buf)])
	return err
}

// Decrypt reads a backup header from r, derives its key from passphrase
// with the header's scrypt parameters (refusing N > 2^20, r > 32, p > 16 or
// more than 1 GiB of memory, as ErrCorrupt), and returns a reader of the
// plaintext. Decrypt itself fails with ErrNotBackup when r does not start
// with the magic, and with ErrBadPassphrase when the passphrase does not
// derive the key the header's key check was made with — before any chunk is
// read. Reading then fails with ErrCorrupt on a chunk that fails to
// authenticate (tampering, reordering, trailing data) and with ErrTruncated
// when the stream ends before the final chunk. Plaintext is released chunk
// by chunk before the end is verified: only a read that ends in io.EOF
// proves the backup whole.
func Decrypt(r io.Reader, passphrase []byte) (io.Reader, error) {
	return decrypt(r, defaultKDFLimits, func(sp scryptParams, salt []byte) (Key, error) {
		return deriveScrypt(passphrase, salt, sp)
	})
}

// DecryptPassKey is Decrypt with a stored PassKey instead of the
// passphrase, so the node can verify the scheduled backups it writes. A
// backup made under another salt or other parameters is ErrBadPassphrase.
func DecryptPassKey(r io.Reader, pk PassKey) (io.Reader, error) {
	return decrypt(r, defaultKDFLimits, func(sp scryptParams, salt []byte) (Key, error) {
		if !pk.valid() || sp != pk.params || !bytes.Equal(salt, pk.salt[:]) {
			return Key{}, fmt.Errorf("%w: backup made with another passphrase key", ErrBadPassphrase)
		}
		return pk.key, nil
	})
}

func decrypt(r io.Reader, lim kdfLimits, master func(scryptParams, []byte) (Key, error)) (io.Reader, error) {
	hdr := make([]byte, headerSize)
	if n, err := io.ReadFull(r, hdr[:len(BackupMagic)]); err != nil {
		switch {
		case n > 0 && errors.Is(err, io.ErrUnexpectedEOF) && string(hdr[:n]) == BackupMagic[:n]:
			return nil, fmt.Errorf("%w: ends inside the header", ErrTruncated)
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			return nil, ErrNotBackup
		default:
			return nil, fmt.Errorf("reading backup header: %w", err)
		}
	}
	if string(hdr[:len(BackupMagic)]) != BackupMagic {
		return nil, ErrNotBackup
	}
	if err := readHeaderPart(r, hdr[offVersion:offKDF]); err != nil {
		return nil, err
	}
	if v := hdr[offVersion]; v != backupVersion {
		return nil, fmt.Errorf("%w: unsupported backup format version %d (made by a newer usipipo?)", ErrCorrupt, v)
	}
	if err := readHeaderPart(r, hdr[offKDF:]); err != nil {
		return nil, err
	}
	if hdr[offKDF] != kdfScrypt {
		return nil, fmt.Errorf("%w: unknown key derivation %d", ErrCorrupt, hdr[offKDF])
	}
	sp := scryptParams{
		logN: hdr[offLogN],
		r:    binary.BigEndian.Uint32(hdr[offR:]),
		p:    binary.BigEndian.Uint32(hdr[offP:]),
	}
	if err := sp.check(lim); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	mk, err := master(sp, hdr[offSalt:offFileNonce])
	if err != nil {
		return nil, fmt.Errorf("decrypting backup: %w", err)
	}
	stream, check := fileKeys(mk, hdr[offFileNonce:offCheck])
	if subtle.ConstantTimeCompare(check[:], hdr[offCheck:]) != 1 {
		return nil, ErrBadPassphrase
	}
	return &decReader{r: r, aead: newGCM(stream), header: hdr, buf: make([]byte, ChunkSize+tagSize)}, nil
}

func readHeaderPart(r io.Reader, b []byte) error {
	if _, err := io.ReadFull(r, b); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: ends inside the header", ErrTruncated)
		}
		return fmt.Errorf("reading backup header: %w", err)
	}
	return nil
}

type decReader struct {
	r       io.Reader
	aead    cipher.AEAD
	header  []byte
	buf     []byte // one sealed chunk
	out     []byte // plaintext not yet returned, inside buf
	counter uint64
	done    bool  // the final chunk was authenticated
	err     error // sticky
}

func (d *decReader) Read(p []byte) (int, error) {
	for len(d.out) == 0 {
		if d.err != nil {
			return 0, d.err
		}
		if d.done {
			return 0, io.EOF
		}
		d.err = d.next()
	}
	n := copy(p, d.out)
	d.out = d.out[n:]
	return n, nil
}

// next reads and opens one chunk. A chunk of full size is never final (the
// writer sends a full buffer at once), so a full read is opened as a middle
// chunk and a short read, which can only come from the end of the stream,
// as the final one.
func (d *decReader) next() error {
	n, err := io.ReadFull(d.r, d.buf)
	final := false
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		return fmt.Errorf("%w: stream ends before chunk %d, the final chunk is missing", ErrTruncated, d.counter)
	case errors.Is(err, io.ErrUnexpectedEOF):
		if n < tagSize {
			return fmt.Errorf("%w: stream ends inside chunk %d", ErrTruncated, d.counter)
		}
		final = true
	default:
		return fmt.Errorf("reading backup: %w", err)
	}
	nonce := chunkNonce(d.counter, final)
	pt, oerr := d.aead.Open(d.buf[:0], nonce[:], d.buf[:n], d.header)
	if oerr != nil {
		if final {
			return truncatedOrCorrupt{chunk: d.counter}
		}
		return fmt.Errorf("%w: chunk %d fails to authenticate", ErrCorrupt, d.counter)
	}
	d.out, d.done = pt, final
	d.counter++
	return nil
}

// truncatedOrCorrupt is a short last chunk that fails to authenticate: the
// stream was cut inside a chunk, or its real final chunk was altered. It
// matches both ErrTruncated and ErrCorrupt.
type truncatedOrCorrupt struct{ chunk uint64 }

func (e truncatedOrCorrupt) Error() string {
	return fmt.Sprintf("keyring: backup truncated or corrupt: it ends inside chunk %d, which fails to authenticate", e.chunk)
}

func (e truncatedOrCorrupt) Is(target error) bool {
	return target == ErrTruncated || target == ErrCorrupt
}
