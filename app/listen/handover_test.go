package listen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the child of a handover: TestMain runs the
// child instead of the tests when envChildMode is set.
const (
	envChildMode  = "USIPIPO_LISTEN_TEST_CHILD"
	envTCPAddr    = "USIPIPO_LISTEN_TEST_TCP"        // address the child asks for
	envUDPAddr    = "USIPIPO_LISTEN_TEST_UDP"        // address the child asks for
	envTCPActual  = "USIPIPO_LISTEN_TEST_TCP_ACTUAL" // address the child must get
	envUDPActual  = "USIPIPO_LISTEN_TEST_UDP_ACTUAL"
	modeChild     = "child"
	modeTrampolin = "trampoline"
)

func TestMain(m *testing.M) {
	switch os.Getenv(envChildMode) {
	case "":
		os.Exit(m.Run())
	case modeTrampolin:
		// Become a process that systemd could have started: replace
		// LISTEN_PPID by LISTEN_PID naming this very process, then exec
		// ourselves (exec keeps the pid and the passed descriptors).
		exe, err := os.Executable()
		if err != nil {
			fmt.Fprintln(os.Stderr, "trampoline:", err)
			os.Exit(2)
		}
		var env []string
		for _, kv := range os.Environ() {
			if strings.HasPrefix(kv, EnvPPID+"=") || strings.HasPrefix(kv, envChildMode+"=") {
				continue
			}
			env = append(env, kv)
		}
		env = append(env, EnvPID+"="+strconv.Itoa(os.Getpid()), envChildMode+"="+modeChild)
		err = syscall.Exec(exe, []string{exe}, env)
		fmt.Fprintln(os.Stderr, "trampoline exec:", err)
		os.Exit(2)
	case modeChild:
		os.Exit(runChild())
	default:
		fmt.Fprintln(os.Stderr, "unknown child mode")
		os.Exit(2)
	}
}

// runChild takes over the parent's sockets, answers "child" on both until
// its stdin closes, and reports problems on stderr.
func runChild() int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "child: "+format+"\n", args...)
		return 1
	}
	r, err := New(os.Getenv, os.Unsetenv)
	if err != nil {
		return fail("New: %v", err)
	}
	for _, v := range []string{EnvFDs, EnvFDNames, EnvPID, EnvPPID} {
		if _, ok := os.LookupEnv(v); ok {
			return fail("%s still set", v)
		}
	}
	if len(r.inherited) != 2 {
		return fail("inherited %d sockets, want 2", len(r.inherited))
	}
	ln, err := r.Listen("tcp", os.Getenv(envTCPAddr))
	if err != nil {
		return fail("Listen: %v", err)
	}
	pc, err := r.ListenPacket("udp", os.Getenv(envUDPAddr))
	if err != nil {
		return fail("ListenPacket: %v", err)
	}
	if got, want := ln.Addr().String(), os.Getenv(envTCPActual); got != want {
		return fail("tcp listener on %s, want the inherited %s", got, want)
	}
	if got, want := pc.LocalAddr().String(), os.Getenv(envUDPActual); got != want {
		return fail("udp socket on %s, want the inherited %s", got, want)
	}
	if _, ok := pc.(*net.UDPConn); !ok {
		return fail("packet conn is %T, want *net.UDPConn", pc)
	}
	tcpDone := serveTCP(ln, "child")
	udpDone := serveUDP(pc, "child")
	fmt.Printf("ready %s %s\n", ln.Addr(), pc.LocalAddr())
	io.Copy(io.Discard, os.Stdin) // the parent closes stdin to stop us
	if err := r.Close(); err != nil {
		return fail("Close: %v", err)
	}
	<-tcpDone
	<-udpDone
	return 0
}

// serveTCP answers every connection with who+"\n" until ln is closed.
func serveTCP(ln net.Listener, who string) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		defer wg.Wait()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				io.WriteString(c, who+"\n")
			}()
		}
	}()
	return done
}

// serveUDP answers every datagram with who+":"+datagram until pc is closed.
func serveUDP(pc net.PacketConn, who string) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo([]byte(who+":"+string(buf[:n])), from)
		}
	}()
	return done
}

func askTCP(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(line, "\n"), nil
}

// askUDP sends msg to addr and returns who answered, retrying a few times
// since a datagram may be read by a process that is just closing.
func askUDP(addr, msg string) (string, error) {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	buf := make([]byte, 1500)
	var lastErr error
	for try := 0; try < 10; try++ {
		if _, err := c.Write([]byte(msg)); err != nil {
			return "", err
		}
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, err := c.Read(buf)
		if err != nil {
			lastErr = err
			continue
		}
		who, got, ok := strings.Cut(string(buf[:n]), ":")
		if !ok || got != msg {
			return "", fmt.Errorf("bad udp answer %q", buf[:n])
		}
		return who, nil
	}
	return "", lastErr
}

func emptyEnv(string) string { return "" }
func noUnset(string) error   { return nil }
func waitDone(t *testing.T, what string, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not stop", what)
	}
}

func TestHandover(t *testing.T) {
	// ppid: the child trusts LISTEN_PPID as Export sets it.
	// pid: the child first execs itself with LISTEN_PID=its pid, the way
	// systemd passes sockets.
	for _, mode := range []string{modeChild, modeTrampolin} {
		t.Run(mode, func(t *testing.T) { testHandover(t, mode) })
	}
}

func testHandover(t *testing.T, mode string) {
	r, err := New(emptyEnv, noUnset)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	const tcpReq, udpReq = "127.0.0.1:0", "127.0.0.1:0"
	ln, err := r.Listen("tcp", tcpReq)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := r.ListenPacket("udp", udpReq)
	if err != nil {
		t.Fatal(err)
	}
	tcpAddr, udpAddr := ln.Addr().String(), pc.LocalAddr().String()
	parentTCP := serveTCP(ln, "parent")
	parentUDP := serveUDP(pc, "parent")

	if who, err := askTCP(tcpAddr); err != nil || who != "parent" {
		t.Fatalf("before handover: tcp answer %q, %v", who, err)
	}
	if who, err := askUDP(udpAddr, "hello"); err != nil || who != "parent" {
		t.Fatalf("before handover: udp answer %q, %v", who, err)
	}

	// A client that keeps connecting to the same port throughout.
	var (
		stop      = make(chan struct{})
		clientEnd = make(chan struct{})
		answers   sync.Map // who -> *atomic.Int64
		failures  atomic.Int64
		firstErr  atomic.Value
	)
	go func() {
		defer close(clientEnd)
		for {
			select {
			case <-stop:
				return
			default:
			}
			who, err := askTCP(tcpAddr)
			if err != nil {
				failures.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				continue
			}
			v, _ := answers.LoadOrStore(who, new(atomic.Int64))
			v.(*atomic.Int64).Add(1)
			time.Sleep(time.Millisecond)
		}
	}()

	files, env, err := r.Export()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 {
		t.Fatalf("Export gave %d files, want 2", len(files))
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), env...)
	cmd.Env = append(cmd.Env,
		envChildMode+"="+mode,
		envTCPAddr+"="+tcpReq, envUDPAddr+"="+udpReq,
		envTCPActual+"="+tcpAddr, envUDPActual+"="+udpAddr)
	cmd.ExtraFiles = files
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		f.Close()
	}
	childExit := make(chan error, 1)
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- line
		io.Copy(io.Discard, stdout)
		childExit <- cmd.Wait()
	}()
	select {
	case line := <-ready:
		if !strings.HasPrefix(line, "ready ") {
			stdin.Close()
			<-childExit
			t.Fatalf("child did not start: %q; stderr:\n%s", line, stderr.String())
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("child not ready; stderr:\n%s", stderr.String())
	}

	// Both processes serve now. The parent lets go of its copies; this
	// must not hang (see dupFile) and must not close the sockets.
	time.Sleep(50 * time.Millisecond)
	closed := make(chan struct{})
	go func() {
		ln.Close()
		pc.Close()
		close(closed)
	}()
	waitDone(t, "parent Close", closed)
	waitDone(t, "parent tcp server", parentTCP)
	waitDone(t, "parent udp server", parentUDP)

	for i := 0; i < 20; i++ {
		if who, err := askTCP(tcpAddr); err != nil || who != "child" {
			t.Fatalf("after handover: tcp answer %q, %v", who, err)
		}
	}
	if who, err := askUDP(udpAddr, "again"); err != nil || who != "child" {
		t.Fatalf("after handover: udp answer %q, %v", who, err)
	}
	time.Sleep(50 * time.Millisecond)
	close(stop)
	<-clientEnd

	stdin.Close()
	select {
	case err := <-childExit:
		if err != nil {
			t.Fatalf("child: %v; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("child did not exit; stderr:\n%s", stderr.String())
	}
	if n := failures.Load(); n != 0 {
		t.Errorf("%d connections failed during the handover, first: %v", n, firstErr.Load())
	}
	count := func(who string) int64 {
		if v, ok := answers.Load(who); ok {
			return v.(*atomic.Int64).Load()
		}
		return 0
	}
	if count("parent") == 0 || count("child") == 0 {
		t.Errorf("client saw parent %d and child %d answers, want both", count("parent"), count("child"))
	}
	t.Logf("client: %d answers by the parent, %d by the child, no failures", count("parent"), count("child"))
	// Now the port is closed for good.
	if _, err := askTCP(tcpAddr); err == nil {
		t.Errorf("tcp port still answers after both closed")
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Logf("dial after close: %v", err)
	}
}
