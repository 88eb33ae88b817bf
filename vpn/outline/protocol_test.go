package outline

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/netip"
	"testing"
)

func TestBytesToKeyMatchesOpenSSL(t *testing.T) {
	// `openssl enc -md md5 -nosalt -P -aes-256-cbc -k foobar` prints this key.
	got := hex.EncodeToString(bytesToKey([]byte("foobar"), 32))
	if got != "3858f62230ac3c915f300c664312c63f568378529614d22ddb49237d2f60bfdf" {
		t.Fatalf("key %s", got)
	}
}

func newTestCipher(t testing.TB, method string) *Cipher {
	c, err := NewCipher(method, "test-password")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestStreamRoundTrip(t *testing.T) {
	for _, m := range Methods() {
		t.Run(m, func(t *testing.T) {
			c := newTestCipher(t, m)
			salt := make([]byte, c.SaltSize())
			rand.Read(salt)
			var wire bytes.Buffer
			w, err := NewStreamWriter(&wire, c, salt)
			if err != nil {
				t.Fatal(err)
			}
			msg := make([]byte, 3*maxPayload+77)
			rand.Read(msg)
			w.Write(msg[:10])
			w.Write(nil)
			w.Write(msg[10:])
			if !bytes.HasPrefix(wire.Bytes(), salt) {
				t.Fatal("salt not first")
			}
			if want := c.SaltSize() + len(msg) + 5*(lenChunkSize+tagSize); wire.Len() != want {
				t.Fatalf("wire %d bytes, want %d", wire.Len(), want)
			}
			r, err := NewStreamReader(&wire, c)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("read %d bytes, %v", len(got), err)
			}
		})
	}
}

func TestStreamRejectsTamperingAndTruncation(t *testing.T) {
	c := newTestCipher(t, DefaultMethod)
	salt := make([]byte, 32)
	var wire bytes.Buffer
	w, _ := NewStreamWriter(&wire, c, salt)
	w.Write([]byte("hello"))
	b := wire.Bytes()
	for i := 32; i < len(b); i++ {
		x := bytes.Clone(b)
		x[i] ^= 1
		r, _ := NewStreamReader(bytes.NewReader(x), c)
		if _, err := io.ReadAll(r); err == nil {
			t.Fatalf("flip at %d accepted", i)
		}
	}
	r, _ := NewStreamReader(bytes.NewReader(b[:len(b)-1]), c)
	if _, err := io.ReadAll(r); err != io.ErrUnexpectedEOF {
		t.Fatalf("truncated: %v", err)
	}
}

func TestPacketRoundTrip(t *testing.T) {
	for _, m := range Methods() {
		c := newTestCipher(t, m)
		pkt, err := SealPacket(c, nil, []byte("datagram"))
		if err != nil {
			t.Fatal(err)
		}
		other, _ := NewCipher(m, "other")
		if _, err := OpenPacket(other, bytes.Clone(pkt)); err != ErrAuth {
			t.Fatalf("%s: wrong key opened: %v", m, err)
		}
		p, err := OpenPacket(c, pkt)
		if err != nil || string(p) != "datagram" {
			t.Fatalf("%s: %q %v", m, p, err)
		}
	}
}

func TestAddrRoundTrip(t *testing.T) {
	for _, a := range []Addr{
		{IP: netip.MustParseAddrPort("192.0.2.1:80")},
		{IP: netip.MustParseAddrPort("[2001:db8::1]:443")},
		{Host: "example.com", Port: 8080},
	} {
		b := AppendAddr([]byte{9}, a)
		got, n, err := ParseAddr(b[1:])
		if err != nil || n != len(b)-1 || got != a {
			t.Fatalf("%v: got %v %d %v", a, got, n, err)
		}
	}
	if a, _, err := ParseAddr([]byte{3, 9, '1', '2', '7', '.', '0', '.', '0', '.', '1', 0, 80}); err != nil || a.Host != "" ||
		a.IP != netip.MustParseAddrPort("127.0.0.1:80") {
		t.Fatalf("literal in a name: %v %v", a, err)
	}
	for _, bad := range [][]byte{nil, {1, 1, 2}, {3, 0, 0, 80}, {3, 2, 'a', 0, 0, 80}, {4, 1}, {5, 1, 2, 3, 4, 0, 80}} {
		if _, _, err := ParseAddr(bad); err == nil {
			t.Fatalf("%v accepted", bad)
		}
	}
}

func TestSaltFilter(t *testing.T) {
	f := newSaltFilter(2, 1<<40, nowFunc())
	a, b, c := []byte("aaaaaaaaaaaaaaaa"), []byte("bbbbbbbbbbbbbbbb"), []byte("cccccccccccccccc")
	if !f.add(a) || f.add(a) || !f.add(b) || !f.add(c) || f.add(a) || f.add(b) {
		t.Fatal("within two generations every salt is remembered")
	}
	f.add([]byte("dddddddddddddddd"))
	f.add([]byte("eeeeeeeeeeeeeeee"))
	if !f.add(a) {
		t.Fatal("memory is not bounded")
	}
}

func TestDeriverMatchesHKDF(t *testing.T) {
	for _, m := range Methods() {
		c := newTestCipher(t, m)
		salt := make([]byte, c.SaltSize())
		rand.Read(salt)
		d := newDeriver(salt)
		for i := range 3 { // reuse must not leak state between keys or salts
			want := hkdfSubkey(t, c, salt)
			if got := d.subkey(c.key); !bytes.Equal(got, want) {
				t.Fatalf("%s #%d: %x, want %x", m, i, got, want)
			}
			salt = make([]byte, c.SaltSize())
			rand.Read(salt)
			d.wipe()
			d.reset(salt)
		}
	}
}

// TestStreamReadsBufferedChunks: over a buffering reader, one Read opens
// every whole chunk already buffered that fits, and stops at one only half
// arrived; over a plain reader it returns a chunk at a time. A chunk that
// does not authenticate after good ones fails the next Read, not the bytes
// before it.
func TestStreamReadsBufferedChunks(t *testing.T) {
	c, _ := NewCipher(DefaultMethod, "pw")
	salt := make([]byte, c.SaltSize())
	rand.Read(salt)
	var wire bytes.Buffer
	w, _ := NewStreamWriter(&wire, c, salt)
	for _, n := range []int{100, 200, 300} {
		w.Write(bytes.Repeat([]byte{byte(n)}, n))
	}
	stream := wire.Bytes()
	chunk := func(n int) int { return lenChunkSize + n + tagSize }
	whole := c.SaltSize() + chunk(100) + chunk(200) // and half of the third
	pr, pw := io.Pipe()
	go func() {
		pw.Write(stream[:whole+chunk(300)/2])
		pw.Write(stream[whole+chunk(300)/2:])
		pw.Close()
	}()
	br := bufio.NewReaderSize(pr, 4096)
	r, err := NewStreamReader(br, c)
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 2*maxPayload)
	if n, err := r.Read(p); n != 300 || err != nil {
		t.Fatalf("first read: %d bytes, %v; want the two buffered chunks, 300", n, err)
	}
	if n, err := r.Read(p); n != 300 || err != nil || p[0] != byte(300%256) {
		t.Fatalf("second read: %d bytes, %v; want the third chunk", n, err)
	}
	if _, err := r.Read(p); err != io.EOF {
		t.Fatalf("at the end: %v", err)
	}

	r, _ = NewStreamReader(bytes.NewReader(stream), c)
	if n, _ := r.Read(p); n != 100 {
		t.Fatalf("over a plain reader: %d bytes, want one chunk", n)
	}

	bad := append([]byte(nil), stream...)
	bad[c.SaltSize()+chunk(100)+chunk(200)+lenChunkSize] ^= 1 // the third payload
	r, _ = NewStreamReader(bufio.NewReader(bytes.NewReader(bad)), c)
	if n, err := r.Read(p); n != 300 || err != nil {
		t.Fatalf("good chunks before a bad one: %d bytes, %v", n, err)
	}
	if _, err := r.Read(p); err != ErrAuth {
		t.Fatalf("the bad chunk: %v, want ErrAuth", err)
	}
}
