package mtproto

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gotd/td/mtproxy"
	"github.com/gotd/td/mtproxy/obfuscated2"
	"github.com/gotd/td/mtproxy/obfuscator"
)

var ddTag = [4]byte{0xdd, 0xdd, 0xdd, 0xdd}

// recorder keeps what a client wrote, to replay its handshake.
type recorder struct {
	net.Conn
	mu  sync.Mutex
	out bytes.Buffer
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	r.out.Write(p)
	r.mu.Unlock()
	return r.Conn.Write(p)
}

func (r *recorder) written() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.out.Bytes())
}

// gotdConn is a gotd obfuscator client connection through the proxy.
type gotdConn struct {
	*obfuscator.Conn
	rec *recorder
}

// dialGotd opens a connection through the proxy with gotd's own MTProxy
// client code: mode "dd", "ee" or "plain".
func dialGotd(t testing.TB, addr, mode string, key []byte, dc int) (*gotdConn, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	rec := &recorder{Conn: c}
	tag := ddTag
	var oc *obfuscator.Conn
	sec := mtproxy.Secret{Secret: key, Tag: 0xdd, Type: mtproxy.Secured}
	switch mode {
	case "ee":
		oc = obfuscator.FakeTLS(rand.Reader, rec)
		sec = mtproxy.Secret{Secret: key, Tag: 0xee, Type: mtproxy.TLS, CloakHost: "cloak.example"}
	case "plain":
		oc = obfuscator.Obfuscated2(rand.Reader, rec)
		tag, sec = [4]byte{0xef, 0xef, 0xef, 0xef}, mtproxy.Secret{Secret: key, Type: mtproxy.Simple}
	default:
		oc = obfuscator.Obfuscated2(rand.Reader, rec)
	}
	if err := oc.Handshake(tag, dc, sec); err != nil {
		return nil, err
	}
	return &gotdConn{Conn: oc, rec: rec}, nil
}

// echo checks that msg comes back through the connection.
func (g *gotdConn) echo(msg []byte) error {
	g.SetDeadline(time.Now().Add(5 * time.Second))
	go func() {
		// gotd's FakeTLS writes one record per Write: keep them within TLS's size.
		for rest := msg; len(rest) > 0; {
			n := min(len(rest), 8<<10)
			if _, err := g.Write(rest[:n]); err != nil {
				return
			}
			rest = rest[n:]
		}
	}()
	back := make([]byte, len(msg))
	if _, err := io.ReadFull(g, back); err != nil {
		return err
	}
	if !bytes.Equal(back, msg) {
		return io.ErrUnexpectedEOF
	}
	return nil
}

// echoDC is a data centre that speaks obfuscated2 (no secret) and echoes;
// it reports the DC index and tag of each connection.
type echoDC struct {
	addr string
	seen chan obfuscated2.Metadata
}

func startEchoDC(t testing.TB) *echoDC {
	t.Helper()
	ln := listen(t)
	e := &echoDC{addr: ln.Addr().String(), seen: make(chan obfuscated2.Metadata, 1000)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				rw, md, err := obfuscated2.Accept(c, nil)
				if err != nil {
					return
				}
				select {
				case e.seen <- md:
				default:
				}
				io.Copy(rw, rw)
			}()
		}
	}()
	return e
}

// closedWithin waits until the connection is closed by the proxy.
func closedWithin(t testing.TB, g *gotdConn, d time.Duration) {
	t.Helper()
	g.rec.Conn.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, g.rec.Conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("connection still open after %v", d)
	}
}

type captureConn struct{ out []byte }

func (c *captureConn) Write(p []byte) (int, error) { c.out = append(c.out, p...); return len(p), nil }
func (c *captureConn) Read([]byte) (int, error)    { return 0, io.EOF }

func newGotdObfs(rw io.ReadWriter) *obfuscated2.Obfuscated2 {
	return obfuscated2.NewObfuscated2(rand.Reader, rw)
}

func gotdSecret(key []byte) mtproxy.Secret {
	return mtproxy.Secret{Secret: key, Tag: 0xdd, Type: mtproxy.Secured}
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
