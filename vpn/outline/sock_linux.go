//go:build linux

package outline

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The server opens its TCP sockets itself: a short connection is mostly
// system calls, and net's accept and dial make fourteen per connection
// besides accept4, socket and connect (getsockname on both sockets,
// getpeername and SO_ERROR on the target, TCP_NODELAY and four keepalive
// options on each); here they are four (an fcntl for each *os.File,
// TCP_NODELAY and getpeername on the target). Measured with strace on the
// Go client connections benchmark: 38 calls per connection before, 24
// after (the scheduler's included), against ss-server's 27.
//
// An accepted socket inherits TCP_NODELAY and the keepalive options from
// the listener (Linux copies them to every socket it accepts), and a
// target socket sets TCP_NODELAY before connecting and looks for the end
// of the handshake without a wait, which loopback and nearby targets have
// usually finished. An *os.File on the non-blocking descriptor gives the
// runtime poller, deadlines included, at one fcntl call.

// Keepalive as net sets it on every accepted connection (15 s idle, 15 s
// interval, 9 probes), set once on the listener instead.
const (
	keepIdle  = 15
	keepIntvl = 15
	keepCount = 9
)

// leanDial says dialSock may be used for targets given as addresses.
const leanDial = true

// sockListener accepts on a duplicate of a listener's descriptor: net's
// listener refuses raw reads, an *os.File's does not. Both descriptors
// name one listening socket; close ends the duplicate's part.
type sockListener struct {
	f  *os.File
	rc syscall.RawConn
}

// newSockListener prepares ln for raw accepts: the options accepted sockets
// inherit are set on it once. It returns nil when ln is not a TCP listener
// or refuses an option; the server then accepts through net.
func newSockListener(ln net.Listener) *sockListener {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return nil
	}
	rc, err := tl.SyscallConn()
	if err != nil {
		return nil
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		for _, o := range []struct{ level, opt, v int }{
			{unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
			{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, keepIdle},
			{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, keepIntvl},
			{unix.IPPROTO_TCP, unix.TCP_KEEPCNT, keepCount},
			{unix.IPPROTO_TCP, unix.TCP_NODELAY, 1},
		} {
			if serr = unix.SetsockoptInt(int(fd), o.level, o.opt, o.v); serr != nil {
				return
			}
		}
	})
	if err != nil || serr != nil {
		return nil
	}
	f, err := tl.File()
	if err != nil {
		return nil
	}
	frc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil
	}
	return &sockListener{f: f, rc: frc}
}

// close closes the duplicate descriptor; a blocked accept returns.
func (l *sockListener) close() error { return l.f.Close() }

// accept waits for the next connection; after close it returns an error
// that is net.ErrClosed, as net's listeners do.
func (l *sockListener) accept() (net.Conn, error) {
	var (
		nfd int
		sa  syscall.Sockaddr
		err error
	)
	rerr := l.rc.Read(func(fd uintptr) bool {
		for {
			// syscall's, not unix's: x/sys asks each IPv4 or IPv6
			// socket for its protocol, one more system call.
			nfd, sa, err = syscall.Accept4(int(fd), syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
			switch err {
			case unix.EINTR, unix.ECONNABORTED: // a connection reset while queued: take the next
				continue
			case unix.EAGAIN:
				return false
			}
			return true
		}
	})
	if rerr != nil {
		// Without a deadline on the duplicate, a raw read fails only
		// once it is closed.
		return nil, fmt.Errorf("accept: %v: %w", rerr, net.ErrClosed)
	}
	if err != nil {
		return nil, os.NewSyscallError("accept4", err)
	}
	return newSockConn(nfd, sockaddrAP(sa)), nil
}

// sockConn is a connected TCP socket driven by the runtime poller through
// an *os.File. It is a net.Conn with CloseWrite.
type sockConn struct {
	f      *os.File
	remote netip.AddrPort
}

func newSockConn(fd int, remote netip.AddrPort) *sockConn {
	return &sockConn{f: os.NewFile(uintptr(fd), "tcp"), remote: remote}
}

func (c *sockConn) Read(b []byte) (int, error)  { return c.f.Read(b) }
func (c *sockConn) Write(b []byte) (int, error) { return c.f.Write(b) }
func (c *sockConn) Close() error                { return c.f.Close() }

// CloseWrite shuts down the sending side: the peer reads EOF.
func (c *sockConn) CloseWrite() error {
	rc, err := c.f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Shutdown(int(fd), unix.SHUT_WR) }); err != nil {
		return err
	}
	return os.NewSyscallError("shutdown", serr)
}

func (c *sockConn) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(c.remote) }

// LocalAddr asks the kernel; nothing on the relay path needs it.
func (c *sockConn) LocalAddr() net.Addr {
	rc, err := c.f.SyscallConn()
	if err != nil {
		return &net.TCPAddr{}
	}
	var sa syscall.Sockaddr
	rc.Control(func(fd uintptr) { sa, _ = syscall.Getsockname(int(fd)) })
	return net.TCPAddrFromAddrPort(sockaddrAP(sa))
}

func (c *sockConn) SetDeadline(t time.Time) error      { return c.f.SetDeadline(t) }
func (c *sockConn) SetReadDeadline(t time.Time) error  { return c.f.SetReadDeadline(t) }
func (c *sockConn) SetWriteDeadline(t time.Time) error { return c.f.SetWriteDeadline(t) }

// remoteAP is the peer's address without an allocation.
func (c *sockConn) remoteAP() netip.AddrPort { return c.remote }

// dialSock connects to ap, an address the egress policy already allowed,
// within timeout or until ctx ends.
func dialSock(ctx context.Context, ap netip.AddrPort, timeout time.Duration) (net.Conn, error) {
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	family := unix.AF_INET
	if ap.Addr().Is6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("setsockopt", err)
	}
	err = unix.Connect(fd, apSockaddr(ap))
	switch err {
	case nil, unix.EINPROGRESS, unix.EINTR:
	default:
		unix.Close(fd)
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(ap), Err: os.NewSyscallError("connect", err)}
	}
	c := newSockConn(fd, ap)
	if err == nil {
		return c, nil
	}
	if err := c.awaitConnect(ctx, timeout); err != nil {
		c.Close()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(ap), Err: err}
	}
	return c, nil
}

// awaitConnect waits for a connect in progress to finish. A handshake that
// has finished already is seen by getpeername without a wait.
func (c *sockConn) awaitConnect(ctx context.Context, timeout time.Duration) error {
	rc, err := c.f.SyscallConn()
	if err != nil {
		return err
	}
	var cerr error
	done := func(fd uintptr) bool {
		if _, err := syscall.Getpeername(int(fd)); err == nil { // see accept: syscall's
			return true
		}
		soerr, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
		switch {
		case err != nil:
			cerr = os.NewSyscallError("getsockopt", err)
		case soerr == 0, syscall.Errno(soerr) == unix.EINPROGRESS, syscall.Errno(soerr) == unix.EALREADY:
			return false // still connecting
		default:
			cerr = os.NewSyscallError("connect", syscall.Errno(soerr))
		}
		return true
	}
	var connected bool
	if err := rc.Control(func(fd uintptr) { connected = done(fd) }); err != nil {
		return err
	}
	if connected {
		return cerr
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.f.SetWriteDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { c.f.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	// RawConn.Write tries done before each wait, so a handshake that ends
	// between the check above and the wait is not missed.
	if err := rc.Write(done); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("connect: %w", err)
	}
	c.f.SetWriteDeadline(time.Time{})
	return cerr
}

// sockaddrAP is a socket address as a netip.AddrPort (zero for others).
func sockaddrAP(sa syscall.Sockaddr) netip.AddrPort {
	switch a := sa.(type) {
	case *syscall.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *syscall.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port))
	}
	return netip.AddrPort{}
}

// apSockaddr is ap (already unmapped) as a socket address.
func apSockaddr(ap netip.AddrPort) unix.Sockaddr {
	if ap.Addr().Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
}
