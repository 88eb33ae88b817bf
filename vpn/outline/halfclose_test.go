package outline

import (
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app/plane"
	"github.com/usipipo/usipipo/store/model"
)

// TestHalfCloseBothWays checks a client's half close reaches the target
// as EOF while the answer still flows back, and the target's close then
// reaches the client as EOF after every byte: each side of the relay
// passes on whichever end comes first.
func TestHalfCloseBothWays(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // answers once its client's input has ended
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		n, _ := io.Copy(io.Discard, c)
		time.Sleep(50 * time.Millisecond) // the answer comes after the client's EOF, not with it
		fmt.Fprintf(c, "read %d bytes", n)
	}()
	s := newTestServer(t, Options{})
	s.Apply(context.Background(), []plane.Credential{cred(t, "k", DefaultMethod, "pw", model.Limits{})})
	c, _ := NewCipher(DefaultMethod, "pw")
	cc := dialClient(t, s.addr, c, ln.Addr().String(), make([]byte, 100000))
	if err := cc.Conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	cc.SetDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(cc)
	if err != nil || string(got) != "read 100000 bytes" {
		t.Fatalf("answer %q, %v", got, err)
	}
}
