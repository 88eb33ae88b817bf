//go:build linux

package wireguard

import (
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// tunConns opens flows from the second client (credential id) to a world
// listener that holds them: the counters' Conns follows them from
// conntrack, and drops back when they close (closed TCP flows linger in
// conntrack, in TIME_WAIT, but are not counted).
func tunConns(t *testing.T, tn *tunNet, node *tunNode, id string) {
	hold := listenIn(t, tn.world, worldAddr+":0")
	go func() {
		for {
			c, err := hold.Accept()
			if err != nil {
				return
			}
			go func() { // held until the client closes
				io.Copy(io.Discard, c)
				c.Close()
			}()
		}
	}()
	conns := func() int {
		for _, c := range node.call(t, tunRequest{Op: "counters"}).Counters.Counters {
			if c.ID == id {
				return c.Conns
			}
		}
		t.Fatalf("no counter for %s", id)
		return 0
	}
	before := conns()
	const n = 5
	var open []net.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	if err := inNetns(tn.cli2, func() error {
		for i := range n {
			c, err := net.DialTimeout("tcp", hold.Addr().String(), 3*time.Second)
			if err != nil {
				return fmt.Errorf("connection %d: %w", i+1, err)
			}
			open = append(open, c)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var got int
	eventually(t, 3*time.Second, fmt.Sprintf("Conns %d+%d", before, n), func() bool { got = conns(); return got == before+n })
	for _, c := range open {
		c.Close()
	}
	open = nil
	eventually(t, 3*time.Second, fmt.Sprintf("Conns back to %d (at %d)", before, got), func() bool { got = conns(); return got == before })
}

// streamFromWorld opens a flow from the second client to a world server
// that writes to it every 20 ms; the channel gets the write error that ends
// it. The client reads what comes.
func streamFromWorld(t *testing.T, tn *tunNet) <-chan error {
	ln := listenIn(t, tn.world, worldAddr+":0")
	ended := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		c, err := ln.Accept()
		if err != nil {
			ended <- err
			return
		}
		defer c.Close()
		close(started)
		buf := make([]byte, 1024)
		for {
			c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Write(buf); err != nil {
				ended <- err
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	var cc net.Conn
	if err := inNetns(tn.cli2, func() (err error) { cc, err = net.DialTimeout("tcp", ln.Addr().String(), 3*time.Second); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	got := make(chan struct{})
	go func() {
		buf := make([]byte, 4096)
		for i := 0; ; i++ {
			if _, err := cc.Read(buf); err != nil {
				return
			}
			if i == 0 {
				close(got)
			}
		}
	}()
	select {
	case <-started:
	case err := <-ended:
		t.Fatal(err)
	}
	select { // the flow carries data before the revocation
	case <-got:
	case <-time.After(3 * time.Second):
		t.Fatal("no data through the flow")
	}
	return ended
}

// ctNetns makes a network namespace of its own for a conntrack table, or
// skips.
func ctNetns(t testing.TB) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("conntrack in a network namespace needs root")
	}
	ns := fmt.Sprintf("h2ct%d", os.Getpid()%100000)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Skipf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	return ns
}

// ctAdd creates a conntrack entry from src to dst (proto TCP in state, or
// UDP when state is 0).
func ctAdd(src, dst netip.Addr, sport uint16, state uint8) error {
	proto, fam := uint8(unix.IPPROTO_UDP), netlink.InetFamily(unix.AF_INET)
	if src.Is6() {
		fam = unix.AF_INET6
	}
	var pi netlink.ProtoInfo
	if state != 0 {
		proto, pi = unix.IPPROTO_TCP, &netlink.ProtoInfoTCP{State: state}
	}
	f := &netlink.ConntrackFlow{FamilyType: uint8(fam), TimeOut: 300, ProtoInfo: pi,
		Forward: netlink.IPTuple{SrcIP: src.AsSlice(), DstIP: dst.AsSlice(), SrcPort: sport, DstPort: 443, Protocol: proto},
		Reverse: netlink.IPTuple{SrcIP: dst.AsSlice(), DstIP: src.AsSlice(), SrcPort: 443, DstPort: sport, Protocol: proto}}
	return netlink.ConntrackCreate(netlink.ConntrackTable, fam, f)
}

// TestTunConntrackCountDelete reads a namespace's conntrack table as tun
// mode does: open flows per tunnel address (TCP in TIME_WAIT, flows to the
// gateway and from outside the pools left out), then deletes one address's
// entries and no other's.
func TestTunConntrackCountDelete(t *testing.T) {
	ns := ctNetns(t)
	a4, a6, b4 := netip.MustParseAddr("10.66.0.2"), netip.MustParseAddr("fd66::2"), netip.MustParseAddr("10.66.0.3")
	gw4, gw6 := gateway(DefaultPoolV4), gateway(DefaultPoolV6)
	world4, world6 := netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("2001:db8::2")
	const established, timeWait = 3, tcpTimeWait
	err := inNetns(ns, func() error {
		for _, e := range []struct {
			src, dst netip.Addr
			port     uint16
			state    uint8
		}{
			{a4, world4, 1000, established}, {a4, world4, 1001, established}, {a4, world4, 1002, 0},
			{a4, world4, 1003, timeWait}, {a4, gw4, 1004, 0}, {a6, world6, 1005, established},
			{a6, gw6, 1006, established}, {b4, world4, 1007, established}, {world4, a4, 1008, established},
		} {
			if err := ctAdd(e.src, e.dst, e.port, e.state); err != nil {
				return fmt.Errorf("creating %v → %v: %w", e.src, e.dst, err)
			}
		}
		got, err := ctCount(DefaultPoolV4, DefaultPoolV6, gw4, gw6)
		if err != nil {
			return err
		}
		if want := map[netip.Addr]int{a4: 3, a6: 1, b4: 1}; !maps.Equal(got, want) {
			return fmt.Errorf("counted %v, want %v", got, want)
		}
		n, err := ctDelete(map[netip.Addr]struct{}{a4: {}, a6: {}})
		if err != nil {
			return err
		}
		if n != 7 {
			return fmt.Errorf("deleted %d entries, want a4's and a6's 7", n)
		}
		got, err = ctCount(DefaultPoolV4, DefaultPoolV6, gw4, gw6)
		if err != nil {
			return err
		}
		if want := map[netip.Addr]int{b4: 1}; !maps.Equal(got, want) {
			return fmt.Errorf("after the delete, counted %v, want %v", got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// BenchmarkTunConntrackCount: reading the open flows of 10,000 peers (two
// each) from conntrack, with this package's parser against the library's
// netlink.ConntrackTableList grouped the same way, in one run. Reported:
// the CPU time (user and system, of the thread that dumps: the kernel's
// side of a dump is most of it) per dump of each, and their ratio.
func BenchmarkTunConntrackCount(b *testing.B) {
	ns := ctNetns(b)
	const peers = 10000
	world := netip.MustParseAddr("198.51.100.2")
	err := inNetns(ns, func() error {
		a := gateway(DefaultPoolV4)
		for range peers {
			a = a.Next()
			for port := range uint16(2) {
				if err := ctAdd(a, world, 1000+port, 3); err != nil {
					return err
				}
			}
		}
		gw4, gw6 := gateway(DefaultPoolV4), gateway(DefaultPoolV6)
		b.ResetTimer()
		start := threadCPU()
		for range b.N {
			got, err := ctCount(DefaultPoolV4, DefaultPoolV6, gw4, gw6)
			if err != nil {
				return err
			}
			if len(got) != peers {
				return fmt.Errorf("counted %d peers", len(got))
			}
		}
		ours := threadCPU() - start
		start = threadCPU()
		for range b.N {
			flows, err := netlink.ConntrackTableList(netlink.ConntrackTable, unix.AF_INET)
			if err != nil {
				return err
			}
			got := map[netip.Addr]int{}
			for _, f := range flows {
				if src, ok := netip.AddrFromSlice(f.Forward.SrcIP); ok && DefaultPoolV4.Contains(src.Unmap()) {
					got[src.Unmap()]++
				}
			}
			if len(got) != peers {
				return fmt.Errorf("library counted %d peers", len(got))
			}
		}
		lib := threadCPU() - start
		b.StopTimer()
		b.ReportMetric(float64(ours.Microseconds())/float64(b.N), "ours-cpu-µs/dump")
		b.ReportMetric(float64(lib.Microseconds())/float64(b.N), "library-cpu-µs/dump")
		b.ReportMetric(float64(lib)/float64(ours), "x-less-cpu")
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// threadCPU is the calling thread's CPU time, user and system.
func threadCPU() time.Duration {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_THREAD, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
