//go:build linux

package outline

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/usipipo/usipipo/app/plane"
	"github.com/usipipo/usipipo/store/model"
)

// sockOpt reads an integer socket option of c.
func sockOpt(t *testing.T, c syscall.Conn, level, opt int) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), level, opt) }); err != nil || gerr != nil {
		t.Fatalf("getsockopt: %v %v", err, gerr)
	}
	return v
}

// TestAcceptedSocketsInheritListenerOptions checks what the raw accept
// relies on: sockets accepted on the listener have net's keepalive and
// TCP_NODELAY without setting them, the peer's address, and close ends a
// blocked accept.
func TestAcceptedSocketsInheritListenerOptions(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	sl := newSockListener(ln)
	if sl == nil {
		t.Fatal("a TCP listener was not prepared for raw accepts")
	}
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c, err := sl.accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc := c.(*sockConn)
	for _, o := range []struct {
		name       string
		level, opt int
		want       int
	}{
		{"SO_KEEPALIVE", unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
		{"TCP_KEEPIDLE", unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, keepIdle},
		{"TCP_KEEPINTVL", unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, keepIntvl},
		{"TCP_KEEPCNT", unix.IPPROTO_TCP, unix.TCP_KEEPCNT, keepCount},
		{"TCP_NODELAY", unix.IPPROTO_TCP, unix.TCP_NODELAY, 1},
	} {
		if got := sockOpt(t, sc.f, o.level, o.opt); got != o.want {
			t.Errorf("%s = %d on the accepted socket, want %d", o.name, got, o.want)
		}
	}
	if got, want := c.RemoteAddr().String(), client.LocalAddr().String(); got != want {
		t.Errorf("remote address %s, want %s", got, want)
	}
	if got, want := c.LocalAddr().String(), client.RemoteAddr().String(); got != want {
		t.Errorf("local address %s, want %s", got, want)
	}
	done := make(chan error, 1)
	go func() { _, err := sl.accept(); done <- err }()
	sl.close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("accept after close: %v", err)
	}
}

// TestDialSockRelaysAndHalfCloses connects with dialSock and checks bytes
// both ways, TCP_NODELAY, and that CloseWrite reaches the peer as EOF
// while the other direction still flows.
func TestDialSockRelaysAndHalfCloses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			peer <- nil
			return
		}
		defer c.Close()
		got, _ := io.ReadAll(c) // until our CloseWrite
		c.Write(append([]byte("got "), got...))
		peer <- got
	}()
	c, err := dialSock(context.Background(), netip.MustParseAddrPort(ln.Addr().String()), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if got := sockOpt(t, c.(*sockConn).f, unix.IPPROTO_TCP, unix.TCP_NODELAY); got != 1 {
		t.Errorf("TCP_NODELAY = %d on the dialled socket", got)
	}
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := c.(*sockConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	answer, err := io.ReadAll(c)
	if err != nil || string(answer) != "got hello" || string(<-peer) != "hello" {
		t.Fatalf("answer %q: %v", answer, err)
	}
}

// TestDialSockFailures: a refused connect reports ECONNREFUSED, and one
// the peer never answers (its accept queue is full, so its SYNs are
// dropped) ends at the timeout or when the context is cancelled.
func TestDialSockFailures(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	if _, err := dialSock(context.Background(), closed, 5*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial to a closed port: %v", err)
	}

	full := fullListener(t)
	if _, err := dialSock(context.Background(), full, 100*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("dial to a silent peer with a timeout: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	if _, err := dialSock(ctx, full, time.Minute); !errors.Is(err, context.Canceled) {
		t.Fatalf("dial to a silent peer, cancelled: %v", err)
	}
}

// fullListener is a loopback listener with a backlog of one that never
// accepts, already holding a connection: further SYNs to it are dropped.
func fullListener(t *testing.T) netip.AddrPort {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.AddrPortFrom(netip.AddrFrom4(sa.(*unix.SockaddrInet4).Addr), uint16(sa.(*unix.SockaddrInet4).Port))
	for range 2 { // fill the accept queue; later connects may hang, which is the point
		c, err := net.DialTimeout("tcp", ap.String(), 200*time.Millisecond)
		if err != nil {
			break
		}
		t.Cleanup(func() { c.Close() })
	}
	return ap
}

// TestTargetRefusedByEgress: an address target outside the egress policy
// is refused before any connect, and the refusal is counted.
func TestTargetRefusedByEgress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.2:0") // loopback, but not the 127.0.0.1/32 the test policy allows
	if err != nil {
		t.Skip("127.0.0.2 is not usable here:", err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- struct{}{}
			c.Close()
		}
	}()
	s := newTestServer(t, Options{})
	s.Apply(context.Background(), []plane.Credential{cred(t, "k", DefaultMethod, "pw", model.Limits{})})
	c, _ := NewCipher(DefaultMethod, "pw")
	cc := dialClient(t, s.addr, c, ln.Addr().String(), []byte("x"))
	cc.SetDeadline(time.Now().Add(5 * time.Second))
	if n, err := io.Copy(io.Discard, cc.Conn); n != 0 || err != nil {
		t.Fatalf("the refused connection got %d bytes, %v", n, err)
	}
	if s.metric("usipipo_outline_refused_total") != 1 {
		t.Fatal("the refusal was not counted")
	}
	select {
	case <-accepted:
		t.Fatal("the refused target was connected")
	default:
	}
}

// At an upgrade the node closes the listener it handed over; StopAccepting
// must also close the duplicate the raw accepts run on, or this process
// keeps taking new connections from the successor's socket. Here nobody
// else holds the socket, so once both are closed a connect is refused.
func TestStopAcceptingClosesTheDuplicate(t *testing.T) {
	s := newTestServer(t, Options{})
	if s.sockLn == nil {
		t.Skip("raw accepts not in use")
	}
	s.o.Listener.Close() // what the node's listener set does
	s.StopAccepting()
	deadline := time.Now().Add(2 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.addr, time.Second)
		if err != nil {
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("connect after StopAccepting: %v, want connection refused", err)
			}
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the socket still accepts connections after StopAccepting")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
