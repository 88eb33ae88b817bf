// Package listen is the single registry through which every data plane and
// the HTTP server obtain their sockets, so that a later zero-downtime upgrade
// can hand all of them to a new process (systemd-style file descriptor
// passing).
//
// # Protocol
//
// A process that hands its sockets on calls [Registry.Export] and starts the
// new process with the returned files as exec.Cmd.ExtraFiles (in order, so
// files[i] becomes fd 3+i in the child) and the returned variables appended
// to its environment. The child calls [New], which reads
//
//   - LISTEN_FDS: the number n of passed sockets, fds 3 .. 3+n-1;
//   - LISTEN_FDNAMES: one name per fd, joined by ":" exactly as systemd does;
//   - LISTEN_PID: the pid the variables are meant for; they are ignored
//     unless it equals os.Getpid(), as sd_listen_fds(3) does;
//   - LISTEN_PPID (an extension of this package, used when LISTEN_PID is
//     absent): the pid of the parent that passed the sockets; they are
//     ignored unless it equals os.Getppid(). A parent cannot know its
//     child's pid before it starts it, so Export sets LISTEN_PPID instead of
//     LISTEN_PID. A process started by systemd sees LISTEN_PID as usual.
//
// and then unsets all four, so that its own children never misread them.
//
// # Names
//
// Each name is "<network>|<address>", where network is the network passed
// to Listen/ListenPacket ("tcp", "udp6", "unix", ...) and address is the
// address string exactly as requested (":0", not the port the kernel
// picked; each port-0 request is its own socket, numbered ":0#0", ":0#1"…
// in request order), percent-encoded: every byte outside [A-Za-z0-9._~/@+,=[]-] is
// written as %XX. In particular ':' becomes %3A and '%' becomes %25, so a
// name never contains the ":" that separates names. Examples:
//
//	tcp|127.0.0.1%3A8080
//	udp|%3A51820
//	unix|/var/lib/usipipo/admin.sock
//	LISTEN_FDNAMES=tcp|127.0.0.1%3A8080:udp|%3A51820
//
// A passed socket whose name does not parse as above (for example one that
// systemd passes with FileDescriptorName=http, or "unknown") is matched by
// its actual local address instead: Listen("tcp", "127.0.0.1:8080") claims
// an unnamed TCP listener bound to 127.0.0.1:8080, ListenPacket("udp", ...)
// likewise for UDP, Listen("unix", path) a unix listener bound to path.
package listen

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Environment variables of the fd passing protocol.
const (
	EnvFDs     = "LISTEN_FDS"
	EnvFDNames = "LISTEN_FDNAMES"
	EnvPID     = "LISTEN_PID"
	EnvPPID    = "LISTEN_PPID"
)

// firstFD is SD_LISTEN_FDS_START: the first passed descriptor.
const firstFD = 3

// maxFDs bounds LISTEN_FDS so that a corrupt value cannot make New walk
// millions of descriptors.
const maxFDs = 1 << 12

// staleDialTimeout bounds the probe of an existing unix socket file.
const staleDialTimeout = time.Second

type key struct {
	network string
	addr    string
}

func (k key) String() string { return k.network + " " + k.addr }

// entry is a socket handed out by Listen or ListenPacket.
type entry struct {
	key      key
	ln       net.Listener   // set for stream sockets
	pc       net.PacketConn // set for datagram sockets
	unixPath string         // socket file to remove on Close ("" if none)
	exported bool           // handed to a child by Export
}

func (e *entry) syscallConn() (syscall.RawConn, error) {
	var c any = e.ln
	if e.pc != nil {
		c = e.pc
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("listen: %s: %T has no file descriptor", e.key, c)
	}
	return sc.SyscallConn()
}

// closed reports whether the socket was already closed by its user.
func (e *entry) closed() bool {
	rc, err := e.syscallConn()
	if err != nil {
		return true
	}
	return rc.Control(func(uintptr) {}) != nil
}

func (e *entry) close() error {
	var err error
	if e.ln != nil {
		err = e.ln.Close()
	} else {
		err = e.pc.Close()
	}
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// inherited is a passed descriptor not yet claimed.
type inherited struct {
	key  key // zero if the name did not parse; see byAddr
	file *os.File
	// byAddr is the socket's own address, used to match sockets whose name
	// is not one of ours.
	byAddr key
}

// Registry hands out listening sockets, inheriting them from a parent
// process when it passed them, and exports them for a child. It is safe for
// concurrent use.
type Registry struct {
	mu        sync.Mutex
	inherited []*inherited
	active    []*entry
	closed    bool
}

// New returns a registry holding the sockets passed by the parent process,
// if any, as described in the package documentation. getenv and unsetenv
// are usually os.Getenv and os.Unsetenv. The protocol variables are unset
// whether or not they were meant for this process.
func New(getenv func(string) string, unsetenv func(string) error) (*Registry, error) {
	return newRegistry(getenv, unsetenv, firstFD, os.Getpid(), os.Getppid())
}

func newRegistry(getenv func(string) string, unsetenv func(string) error, first, pid, ppid int) (*Registry, error) {
	nfds, names, pidStr, ppidStr := getenv(EnvFDs), getenv(EnvFDNames), getenv(EnvPID), getenv(EnvPPID)
	for _, v := range []string{EnvFDs, EnvFDNames, EnvPID, EnvPPID} {
		if err := unsetenv(v); err != nil {
			return nil, fmt.Errorf("listen: unset %s: %w", v, err)
		}
	}
	r := &Registry{}
	if nfds == "" {
		return r, nil
	}
	switch {
	case pidStr != "":
		if p, err := strconv.Atoi(pidStr); err != nil || p != pid {
			return r, nil // meant for another process
		}
	case ppidStr != "":
		if p, err := strconv.Atoi(ppidStr); err != nil || p != ppid {
			return r, nil
		}
	default:
		return r, nil // no pid: cannot tell whom they are for
	}
	n, err := strconv.Atoi(nfds)
	if err != nil || n < 0 || n > maxFDs {
		return nil, fmt.Errorf("listen: invalid %s=%q", EnvFDs, nfds)
	}
	if n == 0 {
		return r, nil
	}
	var nameList []string
	if names != "" {
		nameList = strings.Split(names, ":")
		if len(nameList) != n {
			return nil, fmt.Errorf("listen: %s has %d names for %d descriptors", EnvFDNames, len(nameList), n)
		}
	}
	// Check every descriptor before taking ownership of any, so that an
	// error leaves nothing half done.
	for i := 0; i < n; i++ {
		if _, err := unix.FcntlInt(uintptr(first+i), unix.F_GETFD, 0); err != nil {
			return nil, fmt.Errorf("listen: passed descriptor %d: %w", first+i, err)
		}
	}
	for i := 0; i < n; i++ {
		fd := first + i
		syscall.CloseOnExec(fd) // like sd_listen_fds: not for our children
		name := "unknown"
		if nameList != nil {
			name = nameList[i]
		}
		in := &inherited{file: os.NewFile(uintptr(fd), name)}
		if k, ok := decodeName(name); ok {
			in.key = k
		} else {
			in.byAddr = sockKey(in.file)
		}
		r.inherited = append(r.inherited, in)
	}
	return r, nil
}

// sockKey returns the network class ("tcp", "udp" or "unix") and the local
// address of a passed socket, or the zero key if it is not a socket.
func (r *Registry) claim(k key) *os.File {
	// The first port-0 request also takes a socket passed under the bare
	// address (a parent that names it without a number).
	bare := key{k.network, strings.TrimSuffix(k.addr, "#0")}
	idx := -1
	for i, in := range r.inherited {
		if in.key == k || in.key == bare {
			idx = i
			break
		}
	}
	if idx < 0 {
		for i, in := range r.inherited {
			if in.key == (key{}) && matchesAddr(k, in.byAddr) {
				idx = i
				break
			}
		}
	}
	if idx < 0 {
		return nil
	}
	f := r.inherited[idx].file
	r.inherited = append(r.inherited[:idx], r.inherited[idx+1:]...)
	return f
}

// checkFree checks that k may be registered: no open socket holds it. An
// entry for k whose socket its user has closed is dropped. r.mu held.
// keyFor names a request. Requests for port 0 ("any free port") are
// distinct sockets, numbered "#0", "#1"… by the first number no open socket
// holds, so a child that repeats its parent's requests in order gets the
// same sockets back.
func (r *Registry) keyFor(network, addr string) key {
	if _, port, err := net.SplitHostPort(addr); err != nil || port != "0" {
		return key{network, addr}
	}
	for i := 0; ; i++ {
		k := key{network, addr + "#" + strconv.Itoa(i)}
		if !slices.ContainsFunc(r.active, func(e *entry) bool { return e.key == k && !e.closed() }) {
			return k
		}
	}
}

func (r *Registry) checkFree(k key) error {
	if r.closed {
		return fmt.Errorf("listen: %s: registry closed: %w", k, net.ErrClosed)
	}
	for i, e := range r.active {
		if e.key != k {
			continue
		}
		if !e.closed() {
			return fmt.Errorf("listen: %s: already registered", k)
		}
		r.active = append(r.active[:i], r.active[i+1:]...)
		break
	}
	return nil
}

// Listen returns a stream listener for network ("tcp", "tcp4", "tcp6",
// "unix" or "unixpacket") and addr: the one passed by the parent for the
// same (network, addr) if there is one, else a new one. The registry
// remembers it for Export and Close, under addr as given (so ":0" names the
// same socket in a child that asks for ":0" again; port-0 requests are
// numbered in order, as each asks for another socket). Asking again for a
// fixed (network, addr) whose socket is still open is an error.
//
// A new unix socket replaces a stale socket file at addr (one that nothing
// answers on), never a live one or a file that is not a socket, and is
// made mode 0600 once it listens. Unix socket files are not removed when
// the returned listener is closed; Close removes those that this process
// created and did not Export.
func (r *Registry) Listen(network, addr string) (net.Listener, error) {
	switch network {
	case "tcp", "tcp4", "tcp6", "unix", "unixpacket":
	default:
		return nil, fmt.Errorf("listen: Listen: unsupported network %q", network)
	}
	e, err := r.register(network, addr, network == "unix" || network == "unixpacket",
		func(e *entry, f *os.File) (err error) {
			e.ln, err = net.FileListener(f)
			return err
		},
		func(e *entry) (err error) {
			if e.ln, err = listenStream(network, addr); err == nil {
				if ul, ok := e.ln.(*net.UnixListener); ok {
					ul.SetUnlinkOnClose(false) // a child may serve on it after a handover
				}
			}
			return err
		})
	if err != nil {
		return nil, err
	}
	return e.ln, nil
}

// register claims the passed socket of one request, or creates it: fromFile
// turns a passed descriptor into the entry's socket, create makes a new one
// (after a stale unix socket file at addr is removed; a new unix socket is
// then made 0600).
func (r *Registry) register(network, addr string, unix bool, fromFile func(*entry, *os.File) error, create func(*entry) error) (*entry, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := r.keyFor(network, addr)
	if err := r.checkFree(k); err != nil {
		return nil, err
	}
	e := &entry{key: k}
	if f := r.claim(k); f != nil {
		err := fromFile(e, f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("listen: inherited %s: %w", k, err)
		}
	} else {
		if unix {
			if err := removeStale(network, addr); err != nil {
				return nil, err
			}
		}
		if err := create(e); err != nil {
			return nil, err // net's own error names the operation and the address
		}
		if unix {
			if err := chmodSocket(addr); err != nil {
				e.close()
				os.Remove(addr)
				return nil, err
			}
			if !isAbstract(addr) {
				e.unixPath = addr
			}
		}
	}
	r.active = append(r.active, e)
	return e, nil
}

// ListenUnix is Listen("unix", path): a stream unix socket, mode 0600, for
// local control sockets such as DATA/admin.sock.
func (r *Registry) ListenUnix(path string) (*net.UnixListener, error) {
	ln, err := r.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	ul, ok := ln.(*net.UnixListener)
	if !ok {
		return nil, fmt.Errorf("listen: unix %s: got %T", path, ln)
	}
	return ul, nil
}

// ListenPacket is Listen for datagram sockets: network is "udp", "udp4",
// "udp6" or "unixgram". UDP sockets are *net.UDPConn.
func (r *Registry) ListenPacket(network, addr string) (net.PacketConn, error) {
	switch network {
	case "udp", "udp4", "udp6", "unixgram":
	default:
		return nil, fmt.Errorf("listen: ListenPacket: unsupported network %q", network)
	}
	e, err := r.register(network, addr, network == "unixgram",
		func(e *entry, f *os.File) (err error) {
			e.pc, err = net.FilePacketConn(f)
			return err
		},
		func(e *entry) (err error) {
			e.pc, err = net.ListenPacket(network, addr)
			return err
		})
	if err != nil {
		return nil, err
	}
	return e.pc, nil
}

// Close closes every registered socket that is still open and every passed
// descriptor that was never claimed, and removes the unix socket files that
// this process created and did not Export. Later calls do nothing.
func (r *Registry) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	var errs []error
	for _, e := range r.active {
		if err := e.close(); err != nil {
			errs = append(errs, fmt.Errorf("listen: close %s: %w", e.key, err))
		}
		if e.unixPath != "" && !e.exported {
			if err := os.Remove(e.unixPath); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("listen: remove %s: %w", e.unixPath, err))
			}
		}
	}
	r.active = nil
	for _, in := range r.inherited {
		if err := in.file.Close(); err != nil {
			errs = append(errs, fmt.Errorf("listen: close passed %s: %w", in.file.Name(), err))
		}
	}
	r.inherited = nil
	return errors.Join(errs...)
}
