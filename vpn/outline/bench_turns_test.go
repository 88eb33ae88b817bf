package outline

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usipipo/usipipo/internal/benchproc"
)

// The connections/s benchmarks take turns: the servers are loaded in
// alternating batches within one run, so load from elsewhere on the
// machine that drifts during the run falls on each server alike. Each
// server runs in its own process, and its CPU time per connection is read
// from the kernel.

// benchBaseEnv names an earlier build of this test binary to race as a
// third server, "base": how a change moves the figures, in the same run.
const benchBaseEnv = "USIPIPO_OUTLINE_BENCH_BASE"

// turnRounds is how many batches each server gets; the order flips every
// round.
const turnRounds = 10

// contender is one server under the connections benchmark.
type contender struct {
	name string
	pid  int
	op   func() error // one connection, end to end
	ops  int
	wall time.Duration
	cpu  time.Duration
	sys  time.Duration // the part of cpu spent in the kernel
	// client is this process's CPU time over the contender's turns: the
	// clients and the sink (ss-local runs apart and is not in it).
	client time.Duration
}

// takeTurns gives each contender turnRounds batches of perRound ops, run
// `workers` at a time, the order flipping every round, and sums each one's
// wall and server CPU time.
func takeTurns(b *testing.B, cs []*contender, perRound, workers int) {
	for r := range turnRounds {
		for i := range cs {
			c := cs[i]
			if r%2 == 1 {
				c = cs[len(cs)-1-i]
			}
			cpu0, err := serverCPU(c.pid)
			if err != nil {
				b.Fatal(err)
			}
			sys0, err := serverSys(c.pid)
			if err != nil {
				b.Fatal(err)
			}
			client0, err := benchproc.CPU(os.Getpid())
			if err != nil {
				b.Fatal(err)
			}
			t0 := time.Now()
			if err := parallelOps(perRound, workers, c.op); err != nil {
				b.Fatalf("%s: %v", c.name, err)
			}
			c.wall += time.Since(t0)
			client1, err := benchproc.CPU(os.Getpid())
			if err != nil {
				b.Fatal(err)
			}
			c.client += client1 - client0
			cpu1, err := serverCPU(c.pid)
			if err != nil {
				b.Fatal(err)
			}
			c.cpu += cpu1 - cpu0
			sys1, err := serverSys(c.pid)
			if err != nil {
				b.Fatal(err)
			}
			c.sys += sys1 - sys0
			c.ops += perRound
		}
	}
}

// serverCPU is cpuTime of a server process; a contender without one (pid
// 0, the ceiling) has none.
func serverCPU(pid int) (time.Duration, error) {
	if pid == 0 {
		return 0, nil
	}
	return benchproc.CPU(pid)
}

// serverSys is the kernel's part of serverCPU.
func serverSys(pid int) (time.Duration, error) {
	if pid == 0 {
		return 0, nil
	}
	return benchproc.SysCPU(pid)
}

// connectionTurns runs b.N connections against each contender, 8 at a
// time, and reports each one's connections/s, server CPU time per
// connection, and the CPU time per connection of this process (clients
// and sink).
//
// A plain relay process takes turns with them (TestBenchRelayProcess): the
// same request and answer, unencrypted, through a relay built like our
// server minus Shadowsocks, whose CPU per connection is this design's
// floor in Go.
//
// The ceiling takes turns too: the same request and answer sent straight
// to the sink, no server at all — the most any server could reach here,
// where client, sink and server share two cores. It is well above 1.5×
// ss-server's rate (3.0-3.3× on a quiet machine), but it is not a
// reachable bound: going through any server, the clients and the sink
// alone use 200-240 µs of CPU per connection (client-cpu-µs/conn: the
// client's crypto and a second TCP connection's kernel work), so at 1.5×
// ss-server's rate (6,700-6,900/s when ss-server makes 4,500-4,600/s) two
// cores leave a server 60-70 µs per connection, half of what ss-server
// itself spends (115-140 µs, mostly kernel work for two TCP connections).
// ss-server's kernel time alone (ss-server-sys-µs/conn, 90-100 µs) is
// more than that budget, so no server, however little user-space work it
// did, could reach 1.5× on this machine. What a server can still win here
// is CPU per connection: usipipo-cpu-µs/conn against ss-server-cpu-µs/conn.
func connectionTurns(b *testing.B, target string, cs []*contender) {
	relay := startRelayProcess(b, target)
	cs = append(cs, &contender{name: "relay", pid: relay.pid, op: plainOp(relay.addr)},
		&contender{name: "ceiling", op: plainOp(target)})
	takeTurns(b, cs, (b.N+turnRounds-1)/turnRounds, 8)
	for _, c := range cs {
		b.ReportMetric(float64(c.ops)/c.wall.Seconds(), c.name+"-conns/s")
		b.ReportMetric(float64(c.client)/float64(time.Microsecond)/float64(c.ops), c.name+"-client-cpu-µs/conn")
		if c.pid != 0 {
			b.ReportMetric(float64(c.cpu)/float64(time.Microsecond)/float64(c.ops), c.name+"-cpu-µs/conn")
			b.ReportMetric(float64(c.sys)/float64(time.Microsecond)/float64(c.ops), c.name+"-sys-µs/conn")
		}
	}
}

// plainOp is a connection's request and answer without Shadowsocks: the
// client connects to target itself, sends "ping" and reads "pong".
func plainOp(target string) func() error {
	return func() error {
		c, err := net.DialTimeout("tcp", target, 10*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Minute))
		if _, err := c.Write([]byte("ping")); err != nil {
			return err
		}
		return expectPong(c)
	}
}

// parallelOps runs op n times on `workers` goroutines; the first error stops it.
func parallelOps(n, workers int, op func() error) error {
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		first atomic.Pointer[error]
	)
	for range workers {
		wg.Go(func() {
			for next.Add(1) <= int64(n) && first.Load() == nil {
				if err := op(); err != nil {
					first.CompareAndSwap(nil, &err)
				}
			}
		})
	}
	wg.Wait()
	if e := first.Load(); e != nil {
		return *e
	}
	return nil
}

// contenders starts our server (and the base build, if named) with 1,000
// keys, and ss-server; op makes one connection to a server's address.
func contenders(b *testing.B, op func(addr string) func() error) []*contender {
	servers := benchServers(b, DefaultMethod, 1000)
	if bin := os.Getenv(benchBaseEnv); bin != "" {
		servers["base"] = startServerProcessOf(b, bin, DefaultMethod, 1000)
	}
	var out []*contender
	for _, name := range []string{"usipipo", "base", "ss-server"} {
		if srv, ok := servers[name]; ok {
			out = append(out, &contender{name: name, pid: srv.pid, op: op(srv.addr)})
		}
	}
	return out
}

// goClientOp connects with our Go client, sends "ping" for the sink and
// reads its "pong".
func goClientOp(c *Cipher, target string) func(addr string) func() error {
	return func(addr string) func() error {
		return func() error {
			s, err := dialStream(addr, c, target, []byte("ping"))
			if err != nil {
				return err
			}
			defer s.Close()
			return expectPong(s)
		}
	}
}

// socksDial opens a SOCKS5 CONNECT to target through local (ss-local).
func socksDial(local, target string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", local, 10*time.Second)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(time.Minute))
	c.Write([]byte{5, 1, 0})
	c.Write(append([]byte{5, 1, 0}, AppendAddr(nil, Addr{IP: mustAP(target)})...))
	rep := make([]byte, 12) // greeting answer (2) and connect reply (10)
	if _, err := io.ReadFull(c, rep); err != nil || rep[1] != 0 || rep[3] != 0 {
		c.Close()
		return nil, fmt.Errorf("socks: %v %v", rep, err)
	}
	return c, nil
}

// socksOp connects through ss-local to target, sends "ping" and reads "pong".
func socksOp(local, target string) func() error {
	return func() error {
		c, err := socksDial(local, target)
		if err != nil {
			return err
		}
		defer c.Close()
		c.Write([]byte("ping"))
		return expectPong(c)
	}
}

// ssStream is a Go client's Shadowsocks stream to a target.
type ssStream struct {
	net.Conn
	c *Cipher
	w *StreamWriter
	r *StreamReader
}

// dialStream connects and sends the target address with first in one chunk.
func dialStream(addr string, c *Cipher, target string, first []byte) (*ssStream, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(time.Minute))
	salt := make([]byte, c.SaltSize())
	rand.Read(salt)
	w, err := NewStreamWriter(conn, c, salt)
	if err == nil {
		_, err = w.Write(append(AppendAddr(nil, Addr{IP: mustAP(target)}), first...))
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &ssStream{Conn: conn, c: c, w: w}, nil
}

func (s *ssStream) Write(p []byte) (int, error) { return s.w.Write(p) }

func (s *ssStream) Read(p []byte) (int, error) {
	if s.r == nil {
		r, err := NewStreamReader(s.Conn, s.c)
		if err != nil {
			return 0, err
		}
		s.r = r
	}
	return s.r.Read(p)
}

// bulkChunk is the write size of the throughput benchmarks.
const bulkChunk = 32 << 10

// bulkOp sends n chunks to the sink over a connection from open, which
// sends the sink's length header, and checks the sink counted every byte.
func bulkOp(open func(header []byte) (io.ReadWriteCloser, error), n int) func() error {
	buf := make([]byte, bulkChunk)
	return func() error {
		total := uint64(n) * bulkChunk
		rw, err := open(binary.BigEndian.AppendUint64(nil, total))
		if err != nil {
			return err
		}
		defer rw.Close()
		for range n {
			if _, err := rw.Write(buf); err != nil {
				return err
			}
		}
		var got [8]byte
		if _, err := io.ReadFull(rw, got[:]); err != nil || binary.BigEndian.Uint64(got[:]) != total {
			return fmt.Errorf("sink got %d of %d bytes: %v", binary.BigEndian.Uint64(got[:]), total, err)
		}
		return nil
	}
}

// throughputTurns moves b.N chunks of 32 KiB to the sink through each
// contender, one connection per round, and reports each one's Gbit/s and
// server CPU time per chunk.
func throughputTurns(b *testing.B, cs []*contender) {
	takeTurns(b, cs, 1, 1)
	per := (b.N + turnRounds - 1) / turnRounds
	for _, c := range cs {
		chunks := float64(c.ops * per)
		b.ReportMetric(chunks*bulkChunk*8/c.wall.Seconds()/1e9, c.name+"-Gbit/s")
		b.ReportMetric(float64(c.cpu)/float64(time.Microsecond)/chunks, c.name+"-cpu-µs/32KiB")
	}
}

// BenchmarkThroughput moves bytes from our Go client through each server
// to the sink; ss-server is the same-run baseline.
func BenchmarkThroughput(b *testing.B) {
	target := sink(b)
	c, _ := NewCipher(DefaultMethod, "pw")
	per := (b.N + turnRounds - 1) / turnRounds
	throughputTurns(b, contenders(b, func(addr string) func() error {
		return bulkOp(func(h []byte) (io.ReadWriteCloser, error) { return dialStream(addr, c, target, h) }, per)
	}))
}

// BenchmarkLibevLocalThroughput is the path: shadowsocks-libev's
// ss-local (a client we did not write, in its own process) → server → sink.
func BenchmarkLibevLocalThroughput(b *testing.B) {
	needLibev(b, "ss-server")
	target := sink(b)
	per := (b.N + turnRounds - 1) / turnRounds
	throughputTurns(b, contenders(b, func(addr string) func() error {
		local := ssLocal(b, addr, DefaultMethod, "pw", false)
		return bulkOp(func(h []byte) (io.ReadWriteCloser, error) {
			c, err := socksDial(local, target)
			if err == nil {
				_, err = c.Write(h)
			}
			return c, err
		}, per)
	}))
}

func expectPong(r io.Reader) error {
	var buf [4]byte
	if _, err := io.ReadFull(r, buf[:]); err != nil || string(buf[:]) != "pong" {
		return fmt.Errorf("answer %q: %v", buf, err)
	}
	return nil
}

// BenchmarkConnections is connections/s of returning clients with our Go
// client: each connection sends a request to the sink and reads its answer.
func BenchmarkConnections(b *testing.B) {
	target := sink(b)
	c, _ := NewCipher(DefaultMethod, "pw")
	connectionTurns(b, target, contenders(b, goClientOp(c, target)))
}

// BenchmarkLibevLocalConnections is the same through shadowsocks-libev's
// ss-local, one per server.
func BenchmarkLibevLocalConnections(b *testing.B) {
	needLibev(b, "ss-server")
	target := sink(b)
	connectionTurns(b, target, contenders(b, func(addr string) func() error {
		return socksOp(ssLocal(b, addr, DefaultMethod, "pw", false), target)
	}))
}
