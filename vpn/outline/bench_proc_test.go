package outline

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app/plane"
	"github.com/usipipo/usipipo/internal/benchproc"
	"github.com/usipipo/usipipo/store/model"
)

// The connection benchmarks run our server in a process of its own, as
// ss-server runs in its own: each server's CPU time per connection is then
// read from the kernel, apart from the client's, the sink's and ss-local's.

const benchServerEnv = "USIPIPO_OUTLINE_BENCH_SERVER"

// benchProfileEnv names a directory for the server process's CPU and
// allocation profiles (server-cpu.out, server-mem.out).
const benchProfileEnv = "USIPIPO_OUTLINE_BENCH_PROFILE"

// benchServer is a server under benchmark: where it listens and which
// process it is.
type benchServer struct {
	addr string
	pid  int
}

// startServerProcess runs this test binary as our server with `keys` keys
// of method (the client's, password "pw", last) until the benchmark ends.
func startServerProcess(b *testing.B, method string, keys int) benchServer {
	return startServerProcessOf(b, os.Args[0], method, keys)
}

// startServerProcessOf is startServerProcess with the test binary bin.
func startServerProcessOf(b *testing.B, bin, method string, keys int) benchServer {
	args := []string{"-test.run=^TestBenchServerProcess$", "-test.bench=^$"}
	if dir := os.Getenv(benchProfileEnv); dir != "" {
		args = append(args, "-test.cpuprofile="+filepath.Join(dir, "server-cpu.out"),
			"-test.memprofile="+filepath.Join(dir, "server-mem.out"))
	}
	p := benchproc.Start(b, bin, args, fmt.Sprintf("%s=%s %d", benchServerEnv, method, keys))
	return benchServer{addr: p.Addr(b), pid: p.PID}
}

// TestBenchServerProcess is the server process of the benchmarks; it does
// nothing in a normal test run.
func TestBenchServerProcess(t *testing.T) {
	args := strings.Fields(os.Getenv(benchServerEnv))
	if len(args) != 2 {
		t.Skip("server process of the outline benchmarks only")
	}
	method := args[0]
	keys, err := strconv.Atoi(args[1])
	if err != nil {
		t.Fatal(err)
	}
	s := newTestServer(t, Options{HandshakeTimeout: 30 * time.Second})
	creds := make([]plane.Credential, 0, keys)
	for i := range keys - 1 {
		creds = append(creds, cred(t, fmt.Sprint("other", i), method, fmt.Sprint("other-", i), model.Limits{}))
	}
	if err := s.Apply(context.Background(), append(creds, cred(t, "client", method, "pw", model.Limits{}))); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("addr %s\n", s.addr)
	io.Copy(io.Discard, os.Stdin) // until the benchmark closes our stdin
}

// benchRelayEnv names the target of the plain relay process.
const benchRelayEnv = "USIPIPO_OUTLINE_BENCH_RELAY"

// startRelayProcess runs this test binary as a plain TCP relay to target
// until the benchmark ends.
func startRelayProcess(b *testing.B, target string) benchServer {
	p := benchproc.Start(b, os.Args[0], []string{"-test.run=^TestBenchRelayProcess$", "-test.bench=^$"}, benchRelayEnv+"="+target)
	return benchServer{addr: p.Addr(b), pid: p.PID}
}

// TestBenchRelayProcess is the plain relay of the connection benchmarks:
// the server's own sockets (sock_linux.go), pooled goroutines and pooled
// buffers, a half close passed on each way, and nothing of Shadowsocks. Its
// CPU per connection is the floor of this design in Go: what our server
// spends above it is the protocol's work. It does nothing in a normal
// test run.
func TestBenchRelayProcess(t *testing.T) {
	target := os.Getenv(benchRelayEnv)
	if target == "" {
		t.Skip("relay process of the outline benchmarks only")
	}
	ap, err := netip.ParseAddrPort(target)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); ln.Close(); wg.Wait() }()
	run := newWorkers(ctx, &wg)
	bufs := sync.Pool{New: func() any { return new([2][maxPayload]byte) }}
	dial := func() (net.Conn, error) { return dialSock(ctx, ap, 10*time.Second) }
	if !leanDial {
		dial = func() (net.Conn, error) { return net.DialTimeout("tcp", target, 10*time.Second) }
	}
	accept := func() (net.Conn, error) { return ln.Accept() }
	if sl := newSockListener(ln); sl != nil {
		defer sl.close()
		accept = sl.accept
	}
	copyHalf := func(dst, src net.Conn, buf []byte) {
		for {
			n, err := src.Read(buf)
			if n > 0 {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				closeWrite(dst)
				return
			}
		}
	}
	wg.Go(func() {
		for {
			c, err := accept()
			if err != nil {
				return
			}
			run.Go(func() {
				defer c.Close()
				out, err := dial()
				if err != nil {
					return
				}
				defer out.Close()
				b := bufs.Get().(*[2][maxPayload]byte)
				defer bufs.Put(b)
				done := make(chan struct{})
				run.Go(func() { defer close(done); copyHalf(out, c, b[0][:]) })
				copyHalf(c, out, b[1][:])
				<-done
			})
		}
	})
	fmt.Printf("addr %s\n", ln.Addr())
	io.Copy(io.Discard, os.Stdin) // until the benchmark closes our stdin
}
