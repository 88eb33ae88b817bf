package outline

import (
	"bytes"
	"io"
	"testing"
)

func FuzzParseAddr(f *testing.F) {
	f.Add([]byte{1, 127, 0, 0, 1, 0, 80})
	f.Add([]byte{3, 3, 'a', '.', 'b', 1, 187})
	f.Add(append([]byte{4}, make([]byte, 18)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, n, err := ParseAddr(b)
		if err != nil {
			return
		}
		if n > len(b) {
			t.Fatalf("consumed %d of %d", n, len(b))
		}
		again, m, err := ParseAddr(AppendAddr(nil, a))
		if err != nil || again != a || m == 0 {
			t.Fatalf("%v did not round-trip: %v %v", a, again, err)
		}
	})
}

func FuzzStreamReader(f *testing.F) {
	c, _ := NewCipher(DefaultMethod, "fuzz")
	var wire bytes.Buffer
	w, _ := NewStreamWriter(&wire, c, make([]byte, 32))
	w.Write([]byte("seed payload"))
	f.Add(wire.Bytes())
	f.Add(make([]byte, 60))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := NewStreamReader(bytes.NewReader(b), c)
		if err != nil {
			return
		}
		n, _ := io.Copy(io.Discard, r)
		if n > int64(len(b)) {
			t.Fatalf("decoded %d bytes from %d", n, len(b))
		}
		// The server's path: the length already opened by the key search.
		if m, ok := tcpTrials(b)(0)(&keyEntry{c: c}); ok {
			r := newStreamReader(bytes.NewReader(b[32+lenChunkSize:]), m.aead, 1, m.n)
			if _, err := readTarget(r); err == nil {
				io.Copy(io.Discard, r)
			}
		}
	})
}

func FuzzOpenPacket(f *testing.F) {
	c, _ := NewCipher("aes-128-gcm", "fuzz")
	pkt, _ := SealPacket(c, nil, AppendAddr(nil, Addr{Host: "a.b", Port: 53}))
	f.Add(pkt)
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		keep := bytes.Clone(b)
		dst := make([]byte, len(b))
		if m, ok := udpTrials(b, dst)(0)(&keyEntry{c: c}); ok {
			ParseAddr(m.plain)
		}
		if !bytes.Equal(keep, b) {
			t.Fatal("a trial changed the packet")
		}
		if p, err := OpenPacket(c, b); err == nil {
			ParseAddr(p)
		}
	})
}
