package listen

import (
	"net"
	"os"
	"testing"
	"time"
)

// TestReclaimAfterFailedHandover: sockets exported to a child that never
// took over come back. A listener closed meanwhile (to stop accepting) is
// served again on the same kernel socket, and a connection that arrived
// while nothing accepted is not lost.
func TestReclaimAfterFailedHandover(t *testing.T) {
	r, err := New(func(string) string { return "" }, func(string) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	kept, err := r.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stopped, err := r.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	files, _, err := r.Export()
	if err != nil {
		t.Fatal(err)
	}
	addr := stopped.Addr().String()
	stopped.Close()
	queued, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("the exported duplicate should keep the socket listening: %v", err)
	}
	defer queued.Close()
	if err := r.Reclaim(files); err != nil {
		t.Fatal(err)
	}
	again, err := r.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if again.Addr().String() != addr {
		t.Fatalf("reclaimed listener on %s, want %s", again.Addr(), addr)
	}
	again.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
	c, err := again.Accept()
	if err != nil {
		t.Fatalf("the queued connection was lost: %v", err)
	}
	c.Close()
	if kept.Addr() == nil || len(r.inherited) != 0 {
		t.Fatalf("unclaimed reclaimed sockets: %d", len(r.inherited))
	}
}

func TestReclaimRefusesForeignFiles(t *testing.T) {
	r, _ := New(func(string) string { return "" }, func(string) error { return nil })
	defer r.Close()
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Reclaim([]*os.File{f}); err == nil {
		t.Fatal("a file Export did not make was reclaimed")
	}
	if f.Close() == nil {
		t.Fatal("Reclaim did not take ownership of the file")
	}
}
