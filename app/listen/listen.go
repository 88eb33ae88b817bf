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
// picked), percent-encoded: every byte outside [A-Za-z0-9._~/@+,=[]-] is
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
func sockKey(f *os.File) key {
	rc, err := f.SyscallConn()
	if err != nil {
		return key{}
	}
	var (
		sa    unix.Sockaddr
		typ   int
		serr  error
		tyerr error
	)
	if err := rc.Control(func(fd uintptr) {
		sa, serr = unix.Getsockname(int(fd))
		typ, tyerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TYPE)
	}); err != nil || serr != nil || tyerr != nil {
		return key{}
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return inetKey(typ, net.IP(sa.Addr[:]), sa.Port, "")
	case *unix.SockaddrInet6:
		zone := ""
		if sa.ZoneId != 0 {
			if ifi, err := net.InterfaceByIndex(int(sa.ZoneId)); err == nil {
				zone = ifi.Name
			}
		}
		return inetKey(typ, net.IP(sa.Addr[:]), sa.Port, zone)
	case *unix.SockaddrUnix:
		switch typ {
		case unix.SOCK_STREAM:
			return key{"unix", sa.Name}
		case unix.SOCK_SEQPACKET:
			return key{"unixpacket", sa.Name}
		case unix.SOCK_DGRAM:
			return key{"unixgram", sa.Name}
		}
	}
	return key{}
}

func inetKey(typ int, ip net.IP, port int, zone string) key {
	host := ip.String()
	if zone != "" {
		host += "%" + zone
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	switch typ {
	case unix.SOCK_STREAM:
		return key{"tcp", addr}
	case unix.SOCK_DGRAM:
		return key{"udp", addr}
	}
	return key{}
}

// matchesAddr reports whether a request for k may claim a passed socket
// whose actual address is have.
func matchesAddr(k, have key) bool {
	if have.network == "" {
		return false
	}
	switch k.network {
	case "tcp", "tcp4", "tcp6":
		if have.network != "tcp" {
			return false
		}
	case "udp", "udp4", "udp6":
		if have.network != "udp" {
			return false
		}
	default:
		return k.network == have.network && k.addr == have.addr
	}
	want, err := net.ResolveTCPAddr("tcp", k.addr) // same syntax for udp
	if err != nil || want.Port == 0 {
		return false // ":0" cannot identify a socket
	}
	got, err := net.ResolveTCPAddr("tcp", have.addr)
	if err != nil {
		return false
	}
	if want.Port != got.Port || want.Zone != got.Zone {
		return false
	}
	if want.IP == nil || want.IP.IsUnspecified() {
		return got.IP == nil || got.IP.IsUnspecified()
	}
	return want.IP.Equal(got.IP)
}

// claim removes and returns the passed descriptor for k, if any. r.mu held.
func (r *Registry) claim(k key) *os.File {
	idx := -1
	for i, in := range r.inherited {
		if in.key == k {
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
// same socket in a child that asks for ":0" again). Asking again for a
// (network, addr) whose socket is still open is an error.
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
	k := key{network, addr}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.checkFree(k); err != nil {
		return nil, err
	}
	e := &entry{key: k}
	if f := r.claim(k); f != nil {
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("listen: inherited %s: %w", k, err)
		}
		e.ln = ln
	} else {
		isUnix := network == "unix" || network == "unixpacket"
		if isUnix {
			if err := removeStale(network, addr); err != nil {
				return nil, err
			}
		}
		ln, err := net.Listen(network, addr)
		if err != nil {
			return nil, fmt.Errorf("listen: %w", err)
		}
		if isUnix {
			ul := ln.(*net.UnixListener)
			ul.SetUnlinkOnClose(false)
			if err := chmodSocket(addr); err != nil {
				ul.Close()
				os.Remove(addr)
				return nil, err
			}
			if !isAbstract(addr) {
				e.unixPath = addr
			}
		}
		e.ln = ln
	}
	r.active = append(r.active, e)
	return e.ln, nil
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
	k := key{network, addr}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.checkFree(k); err != nil {
		return nil, err
	}
	e := &entry{key: k}
	if f := r.claim(k); f != nil {
		pc, err := net.FilePacketConn(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("listen: inherited %s: %w", k, err)
		}
		e.pc = pc
	} else {
		isUnix := network == "unixgram"
		if isUnix {
			if err := removeStale(network, addr); err != nil {
				return nil, err
			}
		}
		pc, err := net.ListenPacket(network, addr)
		if err != nil {
			return nil, fmt.Errorf("listen: %w", err)
		}
		if isUnix {
			if err := chmodSocket(addr); err != nil {
				pc.Close()
				os.Remove(addr)
				return nil, err
			}
			if !isAbstract(addr) {
				e.unixPath = addr
			}
		}
		e.pc = pc
	}
	r.active = append(r.active, e)
	return e.pc, nil
}

// Export returns what a child needs to take over every registered socket
// that is still open: files, to be passed in order as exec.Cmd.ExtraFiles,
// and env, to be appended to the child's environment (LISTEN_FDS,
// LISTEN_FDNAMES, LISTEN_PPID=os.Getpid()). The files are duplicates: the
// caller closes them once the child has started, and this process keeps
// serving on its own sockets until it closes them. Exporting does not
// change the sockets' blocking mode.
func (r *Registry) Export() (files []*os.File, env []string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, nil, fmt.Errorf("listen: export: registry closed: %w", net.ErrClosed)
	}
	var names []string
	var exported []*entry
	defer func() {
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			files, env = nil, nil
		}
	}()
	for _, e := range r.active {
		f, err := dupFile(e)
		if errors.Is(err, net.ErrClosed) {
			continue // closed by its user: nothing to hand over
		}
		if err != nil {
			return files, nil, err
		}
		files = append(files, f)
		names = append(names, encodeName(e.key))
		exported = append(exported, e)
	}
	for _, e := range exported {
		e.exported = true
	}
	env = []string{
		EnvFDs + "=" + strconv.Itoa(len(files)),
		EnvFDNames + "=" + strings.Join(names, ":"),
		EnvPPID + "=" + strconv.Itoa(os.Getpid()),
	}
	return files, env, nil
}

// dupFile duplicates e's descriptor into a new *os.File.
//
// It does not use (*net.TCPListener).File and friends: os.StartProcess
// calls Fd on ExtraFiles, and Fd on such a file puts the descriptor into
// blocking mode. O_NONBLOCK belongs to the open file description, which the
// duplicate shares with the socket this process still serves on, so its
// Accept would then block a thread in accept(2) and Close would hang. A
// file made by os.NewFile from a plain dup keeps the flag as it is.
func dupFile(e *entry) (*os.File, error) {
	rc, err := e.syscallConn()
	if err != nil {
		return nil, err
	}
	var nfd int
	var derr error
	if err := rc.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		if errors.Is(err, net.ErrClosed) || isClosing(err) {
			return nil, net.ErrClosed
		}
		return nil, fmt.Errorf("listen: export %s: %w", e.key, err)
	}
	if derr != nil {
		return nil, fmt.Errorf("listen: export %s: dup: %w", e.key, derr)
	}
	return os.NewFile(uintptr(nfd), encodeName(e.key)), nil
}

func isClosing(err error) bool {
	return strings.Contains(err.Error(), "use of closed")
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

func isAbstract(path string) bool { return strings.HasPrefix(path, "@") }

func chmodSocket(path string) error {
	if isAbstract(path) {
		return nil
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("listen: chmod %s: %w", path, err)
	}
	return nil
}

// removeStale removes a socket file at path that nothing answers on. A
// live socket, or a file that is not a socket, is left alone (the listen
// that follows then fails with "address already in use").
func removeStale(network, path string) error {
	if isAbstract(path) || path == "" {
		return nil
	}
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listen: %s %s: %w", network, path, err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("listen: %s %s: file exists and is not a socket", network, path)
	}
	c, err := net.DialTimeout(network, path, staleDialTimeout)
	if err == nil {
		c.Close()
		return fmt.Errorf("listen: %s %s: %w (a server answers on it)", network, path, syscall.EADDRINUSE)
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("listen: remove stale %s: %w", path, err)
		}
		return nil
	case errors.Is(err, syscall.ENOENT):
		return nil // gone meanwhile
	default:
		return fmt.Errorf("listen: probe existing %s: %w", path, err)
	}
}

// encodeName is the LISTEN_FDNAMES name of k; see the package doc.
func encodeName(k key) string {
	return k.network + "|" + escape(k.addr)
}

// decodeName parses a name made by encodeName.
func decodeName(name string) (key, bool) {
	network, enc, ok := strings.Cut(name, "|")
	if !ok {
		return key{}, false
	}
	switch network {
	case "tcp", "tcp4", "tcp6", "unix", "unixpacket", "udp", "udp4", "udp6", "unixgram":
	default:
		return key{}, false
	}
	addr, ok := unescape(enc)
	if !ok {
		return key{}, false
	}
	return key{network, addr}, true
}

func safeByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("._~/@+,=[]-", c) >= 0
}

const hexDigits = "0123456789ABCDEF"

func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if safeByte(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

func unescape(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			if !safeByte(c) {
				return "", false
			}
			b.WriteByte(c)
			continue
		}
		if i+3 > len(s) {
			return "", false
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", false
		}
		b.WriteByte(byte(v))
		i += 2
	}
	return b.String(), true
}
