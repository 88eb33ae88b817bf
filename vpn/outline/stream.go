package outline

import (
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ErrAuth is a chunk or packet that does not authenticate.
var ErrAuth = errors.New("outline: authentication failed")

// StreamReader decrypts a SIP004 TCP stream: after the salt, chunks of an
// encrypted 2-byte length with its tag, then the encrypted payload with its
// tag, with the nonce incremented after each open.
type StreamReader struct {
	r       io.Reader
	aead    cipher.AEAD
	nonce   [nonceSize]byte
	buf     []byte // one sealed payload
	pending int    // a length already opened (by the key search); -1 if none
	lb      [lenChunkSize]byte
	left    []byte // decrypted bytes not yet returned
	err     error
}

// NewStreamReader reads the salt from r and returns a reader for the rest.
func NewStreamReader(r io.Reader, c *Cipher) (*StreamReader, error) {
	salt := make([]byte, c.SaltSize())
	if _, err := io.ReadFull(r, salt); err != nil {
		return nil, fmt.Errorf("outline: reading salt: %w", err)
	}
	aead, err := c.aead(salt)
	if err != nil {
		return nil, err
	}
	return newStreamReader(r, aead, 0, -1), nil
}

// newStreamReader continues a stream whose nonce has been incremented
// opened times and, if pending >= 0, whose next payload has that length.
func newStreamReader(r io.Reader, aead cipher.AEAD, opened int, pending int) *StreamReader {
	s := &StreamReader{r: r, aead: aead, pending: pending}
	for range opened {
		increment(s.nonce[:])
	}
	return s
}

// openLength opens a sealed 2-byte length in place with nonce and checks it.
func openLength(aead cipher.AEAD, nonce []byte, sealed []byte) (int, error) {
	var out [2]byte
	if _, err := aead.Open(out[:0], nonce, sealed[:lenChunkSize], nil); err != nil {
		return 0, ErrAuth
	}
	n := int(binary.BigEndian.Uint16(out[:]))
	if n > maxPayload {
		return 0, fmt.Errorf("outline: chunk length %d over the maximum", n)
	}
	return n, nil
}

// readChunk reads and opens the next chunk into s.left.
func (s *StreamReader) readChunk() error {
	if s.pending < 0 {
		if err := s.readLength(); err != nil {
			return err
		}
	}
	n := s.pending
	s.pending = -1
	if s.buf == nil {
		s.buf = make([]byte, maxPayload+tagSize)
	}
	sealed := s.buf[:n+tagSize]
	if _, err := io.ReadFull(s.r, sealed); err != nil {
		return unexpected(err)
	}
	p, err := s.aead.Open(sealed[:0], s.nonce[:], sealed, nil)
	if err != nil {
		return ErrAuth
	}
	increment(s.nonce[:])
	s.left = p
	return nil
}

// readLength reads and opens the next length chunk into s.pending.
func (s *StreamReader) readLength() error {
	// lb lives in s: a local array would escape to the heap through
	// io.ReadFull, one allocation per chunk.
	if _, err := io.ReadFull(s.r, s.lb[:]); err != nil {
		return err
	}
	n, err := openLength(s.aead, s.nonce[:], s.lb[:])
	if err != nil {
		return err
	}
	increment(s.nonce[:])
	s.pending = n
	return nil
}

// buffered is a reader that tells how many bytes it can return without
// waiting (bufio.Reader).
type buffered interface{ Buffered() int }

// chunkWaiting reports whether the whole next chunk can be read from b
// without waiting, opening its length if that much is there. An error is
// kept for the next Read.
func (s *StreamReader) chunkWaiting(b buffered) bool {
	if s.pending < 0 {
		if b.Buffered() < lenChunkSize {
			return false
		}
		if err := s.readLength(); err != nil {
			s.err = err
			return false
		}
	}
	return b.Buffered() >= s.pending+tagSize
}

// unexpected turns a clean EOF in the middle of a chunk into an error.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Read returns decrypted bytes. A zero-length chunk is skipped. Over a
// reader that buffers (the server's), Read goes on opening the chunks
// already buffered while p has room for a whole one, so that a relay
// writes what one socket read brought in one piece, not chunk by chunk.
func (s *StreamReader) Read(p []byte) (int, error) {
	for len(s.left) == 0 {
		if s.err != nil {
			return 0, s.err
		}
		if err := s.readChunk(); err != nil {
			s.err = err
			return 0, err
		}
	}
	n := copy(p, s.left)
	s.left = s.left[n:]
	b, ok := s.r.(buffered)
	for ok && len(s.left) == 0 && s.err == nil && len(p)-n >= maxPayload && s.chunkWaiting(b) {
		if err := s.readChunk(); err != nil {
			s.err = err
			break
		}
		c := copy(p[n:], s.left)
		n += c
		s.left = s.left[c:]
	}
	return n, nil
}

// StreamWriter encrypts a SIP004 TCP stream; the salt goes out with the
// first write.
type StreamWriter struct {
	w     io.Writer
	aead  cipher.AEAD
	nonce [nonceSize]byte
	salt  []byte // not yet sent
	buf   []byte
}

// NewStreamWriter starts a stream with salt, which must be SaltSize random bytes.
func NewStreamWriter(w io.Writer, c *Cipher, salt []byte) (*StreamWriter, error) {
	if len(salt) != c.SaltSize() {
		return nil, fmt.Errorf("outline: salt of %d bytes, want %d", len(salt), c.SaltSize())
	}
	aead, err := c.aead(salt)
	if err != nil {
		return nil, err
	}
	return newStreamWriter(w, aead, salt), nil
}

// newStreamWriter starts a stream under aead, already derived for salt.
func newStreamWriter(w io.Writer, aead cipher.AEAD, salt []byte) *StreamWriter {
	return &StreamWriter{w: w, aead: aead, salt: salt}
}

// Write seals p as one or more chunks and writes them with one call each;
// an empty p writes nothing (libev rejects empty chunks).
func (s *StreamWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := min(len(p), maxPayload)
		if s.buf == nil {
			s.buf = make([]byte, 0, maxSaltSize+lenChunkSize+maxPayload+tagSize)
		}
		b := append(s.buf[:0], s.salt...)
		s.salt = nil
		b = s.seal(b, p[:n])
		if _, err := s.w.Write(b); err != nil {
			return written, err
		}
		written += n
		p = p[n:]
	}
	return written, nil
}

// seal appends one chunk carrying p to b.
func (s *StreamWriter) seal(b, p []byte) []byte {
	var l [2]byte
	binary.BigEndian.PutUint16(l[:], uint16(len(p)))
	b = s.aead.Seal(b, s.nonce[:], l[:], nil)
	increment(s.nonce[:])
	b = s.aead.Seal(b, s.nonce[:], p, nil)
	increment(s.nonce[:])
	return b
}
