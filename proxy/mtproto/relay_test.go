package mtproto

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app/plane"
)

// TestCloseEndsHalfClosedRelay: a client that half-closes leaves the
// relay waiting on a silent DC; Close must still end it at once.
func TestCloseEndsHalfClosedRelay(t *testing.T) {
	dcLn := listen(t)
	go func() {
		for {
			c, err := dcLn.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() }) // silent, never closes by itself
		}
	}()
	opts := Options{Listener: listen(t), Dial: loopbackDialer(t), DCs: map[int]string{2: dcLn.Addr().String()}}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	key := randKey(t)
	s.Apply(context.Background(), []plane.Credential{cred("u", key)})
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(clientInit(t, key))
	for deadline := time.Now().Add(5 * time.Second); s.m.conns.Get() < 1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("relay not up")
		}
	}
	c.(*net.TCPConn).CloseWrite()
	time.Sleep(50 * time.Millisecond)
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("Close hangs on a half-closed relay")
	}
}
