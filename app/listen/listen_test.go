package listen

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

type fakeEnv struct {
	vars  map[string]string
	unset []string
}

func (e *fakeEnv) get(k string) string { return e.vars[k] }
func (e *fakeEnv) del(k string) error {
	e.unset = append(e.unset, k)
	delete(e.vars, k)
	return nil
}

func (e *fakeEnv) checkUnset(t *testing.T) {
	t.Helper()
	for _, v := range []string{EnvFDs, EnvFDNames, EnvPID, EnvPPID} {
		if !slices.Contains(e.unset, v) {
			t.Errorf("%s was not unset", v)
		}
	}
}

// fdOpen reports whether fd is an open descriptor.
func fdOpen(fd int) bool {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	return err == nil
}

// freeFDRange finds n consecutive unused descriptor numbers.
func freeFDRange(t *testing.T, n int) int {
	t.Helper()
	for base := 600; base < 1000; base += 16 {
		free := true
		for i := 0; i < n; i++ {
			if fdOpen(base + i) {
				free = false
				break
			}
		}
		if free {
			return base
		}
	}
	t.Fatal("no free descriptor range")
	return 0
}

// passFDs duplicates the sockets of conns onto consecutive descriptors,
// as a parent process would hand them, and closes conns. It returns the
// first descriptor.
func passFDs(t *testing.T, conns ...syscall.Conn) int {
	t.Helper()
	base := freeFDRange(t, len(conns))
	for i, c := range conns {
		rc, err := c.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var derr error
		if err := rc.Control(func(fd uintptr) {
			derr = unix.Dup3(int(fd), base+i, unix.O_CLOEXEC)
		}); err != nil || derr != nil {
			t.Fatal(err, derr)
		}
		if ul, ok := c.(*net.UnixListener); ok {
			ul.SetUnlinkOnClose(false)
		}
		c.(interface{ Close() error }).Close()
	}
	t.Cleanup(func() {
		for i := range conns {
			unix.Close(base + i) // in case the test failed before claiming
		}
	})
	return base
}

func TestInheritWithListenPID(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "admin.sock")
	ux, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	// Sockets as systemd passes them, named by FileDescriptorName=.
	http, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	spare, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tcpAddr, udpAddr, httpAddr := tcp.Addr().String(), udp.LocalAddr().String(), http.Addr().String()
	names := []string{
		"tcp|127.0.0.1%3A0",
		"udp|" + escape(":51820"),
		"unix|" + escape(sock),
		"http",
		"spare",
	}
	base := passFDs(t, tcp.(syscall.Conn), udp.(syscall.Conn), ux.(syscall.Conn), http.(syscall.Conn), spare.(syscall.Conn))

	env := &fakeEnv{vars: map[string]string{
		EnvFDs:     "5",
		EnvFDNames: strings.Join(names, ":"),
		EnvPID:     strconv.Itoa(os.Getpid()),
	}}
	r, err := newRegistry(env.get, env.del, base, os.Getpid(), os.Getppid())
	if err != nil {
		t.Fatal(err)
	}
	env.checkUnset(t)
	if len(r.inherited) != 5 {
		t.Fatalf("inherited %d, want 5", len(r.inherited))
	}
	for i := 0; i < 5; i++ {
		flags, err := unix.FcntlInt(uintptr(base+i), unix.F_GETFD, 0)
		if err != nil || flags&unix.FD_CLOEXEC == 0 {
			t.Errorf("passed fd %d: flags %d, %v; want close-on-exec", base+i, flags, err)
		}
	}

	ln, err := r.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if ln.Addr().String() != tcpAddr {
		t.Errorf("tcp: got %s, want inherited %s", ln.Addr(), tcpAddr)
	}
	pc, err := r.ListenPacket("udp", ":51820")
	if err != nil {
		t.Fatal(err)
	}
	if pc.LocalAddr().String() != udpAddr {
		t.Errorf("udp: got %s, want inherited %s", pc.LocalAddr(), udpAddr)
	}
	ul, err := r.ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	// The unnamed systemd socket is found by its address.
	hl, err := r.Listen("tcp", httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	if hl.Addr().String() != httpAddr {
		t.Errorf("by address: got %s, want %s", hl.Addr(), httpAddr)
	}
	if len(r.inherited) != 1 {
		t.Errorf("%d unclaimed, want 1", len(r.inherited))
	}

	// They really are the passed sockets: they answer.
	go func() {
		if c, err := ul.Accept(); err == nil {
			c.Write([]byte("x"))
			c.Close()
		}
	}()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != nil {
		t.Fatalf("inherited unix listener does not answer: %v", err)
	}
	c.Close()

	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if fdOpen(base + i) {
			t.Errorf("fd %d still open after Close", base+i)
		}
	}
	// An inherited unix socket belongs to whoever created it: keep the file.
	if _, err := os.Lstat(sock); err != nil {
		t.Errorf("inherited socket file removed: %v", err)
	}
}

func TestListenPIDMismatchIgnored(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := passFDs(t, ln.(syscall.Conn))
	cases := map[string]map[string]string{
		"pid":    {EnvPID: strconv.Itoa(os.Getpid() + 1)},
		"ppid":   {EnvPPID: strconv.Itoa(os.Getppid() + 1)},
		"no pid": {},
		"bad":    {EnvPID: "self"},
	}
	for name, extra := range cases {
		t.Run(name, func(t *testing.T) {
			env := &fakeEnv{vars: map[string]string{
				EnvFDs:     "1",
				EnvFDNames: "tcp|127.0.0.1%3A0",
			}}
			for k, v := range extra {
				env.vars[k] = v
			}
			r, err := newRegistry(env.get, env.del, base, os.Getpid(), os.Getppid())
			if err != nil {
				t.Fatal(err)
			}
			env.checkUnset(t)
			if len(r.inherited) != 0 {
				t.Fatalf("took %d descriptors meant for another process", len(r.inherited))
			}
			l, err := r.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			if l.Addr().String() == ln.Addr().String() {
				t.Fatal("got the foreign socket")
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			if !fdOpen(base) {
				t.Fatal("foreign descriptor was closed")
			}
		})
	}
}

func TestNewRejectsMalformed(t *testing.T) {
	pid := strconv.Itoa(os.Getpid())
	free := freeFDRange(t, 2)
	cases := map[string]map[string]string{
		"count":      {EnvFDs: "many", EnvPID: pid},
		"negative":   {EnvFDs: "-1", EnvPID: pid},
		"huge":       {EnvFDs: "100000000", EnvPID: pid},
		"names":      {EnvFDs: "2", EnvFDNames: "tcp|%3A1", EnvPID: pid},
		"closed fds": {EnvFDs: "2", EnvPID: pid},
	}
	for name, vars := range cases {
		t.Run(name, func(t *testing.T) {
			env := &fakeEnv{vars: vars}
			if _, err := newRegistry(env.get, env.del, free, os.Getpid(), os.Getppid()); err == nil {
				t.Fatal("no error")
			}
			env.checkUnset(t)
		})
	}
	env := &fakeEnv{vars: map[string]string{EnvFDs: "0", EnvPID: pid}}
	if r, err := newRegistry(env.get, env.del, free, os.Getpid(), os.Getppid()); err != nil || len(r.inherited) != 0 {
		t.Fatalf("LISTEN_FDS=0: %v", err)
	}
}

func TestNameEncoding(t *testing.T) {
	keys := []key{
		{"tcp", "127.0.0.1:8080"},
		{"tcp", ":0"},
		{"tcp6", "[::1]:443"},
		{"tcp6", "[fe80::1%eth0]:443"},
		{"udp", ":51820"},
		{"unix", "/var/lib/usipipo/admin.sock"},
		{"unix", "/tmp/odd:name|with%chars and spaces\n"},
		{"unixgram", "@abstract"},
		{"tcp", ""},
	}
	var names []string
	for _, k := range keys {
		n := encodeName(k)
		if strings.ContainsAny(n, ": \n\t") || strings.Count(n, "|") != 1 {
			t.Errorf("name %q of %v contains a separator", n, k)
		}
		got, ok := decodeName(n)
		if !ok || got != k {
			t.Errorf("decode(%q) = %v, %v; want %v", n, got, ok, k)
		}
		names = append(names, n)
	}
	joined := strings.Join(names, ":")
	if parts := strings.Split(joined, ":"); len(parts) != len(keys) {
		t.Errorf("joined names split into %d, want %d", len(parts), len(keys))
	}
	if got := encodeName(key{"tcp", "127.0.0.1:8080"}); got != "tcp|127.0.0.1%3A8080" {
		t.Errorf("documented example encodes as %q", got)
	}
	for _, bad := range []string{"http", "unknown", "sctp|x", "tcp|%3", "tcp|%zz", "tcp|a:b", "tcp|a b"} {
		if k, ok := decodeName(bad); ok {
			t.Errorf("decode(%q) = %v, want failure", bad, k)
		}
	}
}

func TestStaleUnixSocketRemoved(t *testing.T) {
	path := filepath.Join(t.TempDir(), "admin.sock")
	// A socket file left behind by a process that died.
	old, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	old.SetUnlinkOnClose(false)
	old.Close()
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("no stale socket to test with: %v", err)
	}

	r, _ := New(emptyEnv, noUnset)
	defer r.Close()
	ln, err := r.ListenUnix(path)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("socket mode %o, want 600", perm)
	}
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("new socket does not answer: %v", err)
	}
	c.Close()
}

func TestLiveUnixSocketKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "admin.sock")
	live, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	r, _ := New(emptyEnv, noUnset)
	defer r.Close()
	if _, err := r.Listen("unix", path); err == nil {
		t.Fatal("took over the path of a live socket")
	} else if !errors.Is(err, syscall.EADDRINUSE) {
		t.Logf("error: %v", err)
	}
	// The live server still answers.
	go func() {
		if c, err := live.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("live socket broken: %v", err)
	}
	c.Close()
}

func TestNonSocketFileKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "admin.sock")
	if err := os.WriteFile(path, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, _ := New(emptyEnv, noUnset)
	defer r.Close()
	if _, err := r.Listen("unix", path); err == nil {
		t.Fatal("replaced a regular file")
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "data" {
		t.Fatalf("regular file changed: %q, %v", b, err)
	}
}

func TestUnixSocketFileLifecycle(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.sock"), filepath.Join(dir, "b.sock")
	r, _ := New(emptyEnv, noUnset)
	la, err := r.Listen("unix", a)
	if err != nil {
		t.Fatal(err)
	}
	// Closing the listener (as a server's shutdown does) keeps the file:
	// after a handover the child serves on it.
	la.Close()
	if _, err := os.Lstat(a); err != nil {
		t.Fatalf("socket file removed by listener Close: %v", err)
	}
	if _, err := r.Listen("unix", b); err != nil {
		t.Fatal(err)
	}
	files, _, err := r.Export()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		f.Close()
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(a); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("unexported socket file not removed by Close: %v", err)
	}
	if _, err := os.Lstat(b); err != nil {
		t.Errorf("exported socket file removed by Close: %v", err)
	}
}

func TestListenPacketUnixgramMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dgram.sock")
	r, _ := New(emptyEnv, noUnset)
	defer r.Close()
	if _, err := r.ListenPacket("unixgram", path); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("mode %o, want 600", perm)
	}
}

func TestSameAddressTwice(t *testing.T) {
	r, _ := New(emptyEnv, noUnset)
	defer r.Close()
	ln, err := r.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Port 0 asks for any free port: a second request is another socket.
	ln2, err := r.Listen("tcp", "127.0.0.1:0")
	if err != nil || ln2.Addr().String() == ln.Addr().String() {
		t.Fatalf("second port-0 Listen: %v", err)
	}
	ln2.Close()
	// A fixed address is one socket.
	fixed := ln.Addr().String()
	ln.Close()
	if ln, err = r.Listen("tcp", fixed); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Listen("tcp", fixed); err == nil {
		t.Fatal("second Listen for the same address succeeded")
	}
	// Another network is another socket.
	if _, err := r.ListenPacket("udp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if _, err := r.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatalf("Listen after the old socket closed: %v", err)
	}
	if _, err := r.Listen("sctp", "127.0.0.1:0"); err == nil {
		t.Fatal("unsupported network accepted")
	}
	if _, err := r.ListenPacket("tcp", "127.0.0.1:0"); err == nil {
		t.Fatal("ListenPacket accepted tcp")
	}
}

func TestExport(t *testing.T) {
	r, _ := New(emptyEnv, noUnset)
	defer r.Close()
	ln, err := r.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone, err := r.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone.Close()
	pc, err := r.ListenPacket("udp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()

	files, env, err := r.Export()
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	if len(files) != 2 {
		t.Fatalf("%d files, want 2 (the closed socket is skipped)", len(files))
	}
	want := []string{
		"LISTEN_FDS=2",
		"LISTEN_FDNAMES=tcp|127.0.0.1%3A0%230:udp|%3A0%230",
		"LISTEN_PPID=" + strconv.Itoa(os.Getpid()),
	}
	if !slices.Equal(env, want) {
		t.Errorf("env = %q, want %q", env, want)
	}

	// os/exec calls Fd on ExtraFiles. That must not put the socket this
	// process still serves on into blocking mode.
	for _, f := range files {
		_ = f.Fd()
	}
	rc, _ := ln.(syscall.Conn).SyscallConn()
	var flags int
	var ferr error
	rc.Control(func(fd uintptr) { flags, ferr = unix.FcntlInt(fd, unix.F_GETFL, 0) })
	if ferr != nil || flags&unix.O_NONBLOCK == 0 {
		t.Fatalf("listener no longer nonblocking after Export+Fd: flags %#x, %v", flags, ferr)
	}
	// And so Close still interrupts a pending Accept.
	accepted := make(chan error, 1)
	go func() {
		_, err := ln.Accept()
		accepted <- err
	}()
	time.Sleep(20 * time.Millisecond)
	ln.Close()
	select {
	case err := <-accepted:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not interrupt Accept")
	}
}

func TestClose(t *testing.T) {
	r, _ := New(emptyEnv, noUnset)
	ln, err := r.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc, err := r.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("listener still open: %v", err)
	}
	if _, _, err := pc.ReadFrom(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("packet conn still open: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := r.Listen("tcp", "127.0.0.1:0"); err == nil {
		t.Error("Listen after Close succeeded")
	}
	if _, _, err := r.Export(); err == nil {
		t.Error("Export after Close succeeded")
	}
}
