package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MaxRecordPayload is the largest application-data payload we send per TLS
// record (TLS's own limit); we accept up to 64 KiB from clients, as some
// send larger records than TLS allows.
const MaxRecordPayload = 16 << 10

// RecordReader yields the payload of a client's TLS application-data
// records, reading straight into the caller's buffer: it holds no buffer
// of its own, so an idle connection costs nothing here.
type RecordReader struct {
	r    io.Reader
	left int // payload bytes left in the current record
	hdr  [RecordHeaderLen]byte
}

// NewRecordReader reads application-data payloads from r.
func NewRecordReader(r io.Reader) *RecordReader { return &RecordReader{r: r} }

func (t *RecordReader) Read(p []byte) (int, error) {
	for t.left == 0 {
		if err := t.next(); err != nil {
			return 0, err
		}
	}
	if len(p) > t.left {
		p = p[:t.left]
	}
	n, err := t.r.Read(p)
	t.left -= n
	if err == io.EOF && t.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// next reads record headers until an application-data record starts,
// skipping change cipher specs; a close alert ends the stream.
func (t *RecordReader) next() error {
	if _, err := io.ReadFull(t.r, t.hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("mtproto: truncated TLS record header: %w", err)
		}
		return err
	}
	n := int(binary.BigEndian.Uint16(t.hdr[3:5]))
	if t.hdr[1] != 3 {
		return fmt.Errorf("mtproto: TLS record version %#x%02x", t.hdr[1], t.hdr[2])
	}
	switch t.hdr[0] {
	case recordAppData:
		t.left = n
		return nil
	case recordChangeCipher:
		var skip [64]byte
		if n > len(skip) {
			return fmt.Errorf("mtproto: change cipher spec of %d bytes", n)
		}
		_, err := io.ReadFull(t.r, skip[:n])
		return err
	case recordAlert:
		return io.EOF
	default:
		return fmt.Errorf("mtproto: unexpected TLS record type %#x", t.hdr[0])
	}
}

// PutRecordHeader writes an application-data record header for n payload
// bytes into b[:5]; the relay reads payloads at b[5:] so a record goes out
// in one write.
func PutRecordHeader(b []byte, n int) {
	b[0], b[1], b[2] = recordAppData, 3, 3
	binary.BigEndian.PutUint16(b[3:5], uint16(n))
}
