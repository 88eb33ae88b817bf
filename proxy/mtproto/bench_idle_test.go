package mtproto

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app/plane"
)

// helperEnv selects a helper role when the test binary re-runs itself.
const helperEnv = "USIPIPO_MTPROTO_IDLE_HELPER"

// BenchmarkIdleMemory: heap and stack per idle relayed connection of the
// proxy, at 1,000 and 10,000 connections, measured in this process (Go's
// HeapInuse+StackInuse after GC, before and after). The clients and the DC
// run in two helper processes (this test binary re-run), so the figure is
// the proxy's alone and this process needs only the proxy's two
// descriptors per connection. When the descriptor limit cannot hold 10,000
// (this machine's hard limit is 20,000 and raising it needs
// CAP_SYS_RESOURCE), the large run opens as many as fit and says how many
// in its "conns" figure.
func BenchmarkIdleMemory(b *testing.B) {
	for _, want := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("conns=%d", want), func(b *testing.B) {
			n := min(want, fdRoom()/2)
			if n < want {
				b.Logf("descriptor limit: %d connections instead of %d", n, want)
			}
			for range b.N {
				idleMemory(b, n)
			}
			b.ReportMetric(float64(n), "conns")
		})
	}
}

// fdRoom is how many more descriptors this process may open, raising its
// soft limit to the hard one first.
func fdRoom() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	lim.Cur = lim.Max
	syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	open, _ := os.ReadDir("/proc/self/fd")
	return int(lim.Cur) - len(open) - 64
}

func idleMemory(b *testing.B, n int) {
	dcAddr, stopDC := startHelper(b, "dc")
	defer stopDC()
	s := startProxy(b, Options{DCs: map[int]string{2: dcAddr}, MaxConns: n + 10})
	defer s.Close()
	key := randKey(b)
	s.Apply(context.Background(), []plane.Credential{cred("u", key)})
	before := memInUse()
	_, stopClients := startHelper(b, "clients", s.Addr().String(), strconv.Itoa(n), hex.EncodeToString(key))
	defer stopClients()
	for deadline := time.Now().Add(120 * time.Second); s.m.conns.Get() < float64(n); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("%v relays of %d up", s.m.conns.Get(), n)
		}
	}
	after := memInUse()
	b.ReportMetric(float64(after-before)/float64(n), "B/idle-conn")
}

// startHelper runs this test binary as a helper holding sockets; it prints
// one line (an address, or "ready") once set up, and exits when its stdin
// closes.
func startHelper(b *testing.B, role string, args ...string) (string, func()) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleHelper$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+role+" "+strings.Join(args, " "))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	stop := func() { in.Close(); cmd.Wait() }
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		stop()
		b.Fatalf("%s helper: %v", role, err)
	}
	go io.Copy(io.Discard, out)
	return strings.TrimSpace(line), stop
}

// TestIdleHelper is the helper process of BenchmarkIdleMemory; it does
// nothing in a normal test run.
func TestIdleHelper(t *testing.T) {
	role := strings.Fields(os.Getenv(helperEnv))
	if len(role) == 0 {
		t.Skip("helper process of BenchmarkIdleMemory only")
	}
	var held []net.Conn
	switch role[0] {
	case "dc": // accepts and holds what the proxy dials
		fdRoom()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close() // held until the helper ends
			}
		}()
		fmt.Println(ln.Addr())
	case "clients": // proxy address, count, key: n dd clients that say nothing after their init
		fdRoom()
		n, _ := strconv.Atoi(role[2])
		key, _ := hex.DecodeString(role[3])
		for range n {
			c, err := net.Dial("tcp", role[1])
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Write(clientInit(t, key)); err != nil {
				t.Fatal(err)
			}
			held = append(held, c)
		}
		fmt.Println("ready")
	}
	io.Copy(io.Discard, os.Stdin)
	for _, c := range held {
		c.Close()
	}
}
