package netstack

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"testing"
	"time"

	wgnetstack "golang.zx2c4.com/wireguard/tun/netstack"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
)

// segStats is what the checks saw of the device's outbound TCP segments.
type segStats struct {
	data, push, reads, maxRun int
	freed                     int // packets a re-packed run left empty
}

// checkSegments verifies one Read's packets as a client would receive
// them: each fits the MTU, its IPv4 header and TCP checksums hold, and a
// data segment that the next packet continues (same flow, next sequence
// number) carries no PSH.
func checkSegments(pkts [][]byte, mtu int, st *segStats) error {
	st.reads++
	run := 1
	for i, p := range pkts {
		if len(p) > mtu {
			return fmt.Errorf("packet of %d bytes over the MTU %d", len(p), mtu)
		}
		if len(p) == 0 {
			st.freed++
			continue
		}
		off, ok := tcpOffset(p)
		if !ok {
			continue
		}
		if p[0]>>4 == 4 && checksum.Checksum(p[:off], 0) != 0xffff {
			return errors.New("bad IPv4 header checksum")
		}
		var pseudo uint16
		if p[0]>>4 == 4 {
			pseudo = checksum.Checksum(p[12:20], 0)
		} else {
			pseudo = checksum.Checksum(p[8:40], 0)
		}
		pseudo = checksum.Combine(pseudo, 6)
		pseudo = checksum.Combine(pseudo, uint16(len(p)-off))
		if checksum.Checksum(p[off:], pseudo) != 0xffff {
			return fmt.Errorf("bad TCP checksum on a %d-byte packet", len(p))
		}
		payload := len(p) - off - int(p[off+12]>>4)*4
		if payload == 0 {
			continue
		}
		st.data++
		if p[off+13]&tcpPSH != 0 {
			st.push++
		}
		if i+1 < len(pkts) {
			q := pkts[i+1]
			if qo, ok := tcpOffset(q); ok && len(q) > qo+int(q[qo+12]>>4)*4 && string(p[12:off+4]) == string(q[12:qo+4]) &&
				binary.BigEndian.Uint32(q[qo+4:]) == binary.BigEndian.Uint32(p[off+4:])+uint32(payload) {
				if p[off+13]&tcpPSH != 0 {
					return errors.New("PSH on a segment that the next one continues")
				}
				run++
				st.maxRun = max(st.maxRun, run)
				continue
			}
		}
		run = 1
	}
	return nil
}

// tcpOffset is the TCP header offset of an IPv4 or IPv6 TCP packet.
func tcpOffset(p []byte) (int, bool) {
	switch {
	case len(p) >= 40 && p[0]>>4 == 4 && p[9] == 6:
		return int(p[0]&0x0f) * 4, true
	case len(p) >= 60 && p[0]>>4 == 6 && p[6] == 6:
		return 40, true
	}
	return 0, false
}

// TestSegmentsBulkTCP: a bulk download from the device's stack to a stock
// gVisor stack (wireguard-go's tun/netstack, which verifies checksums) over
// IPv4 and IPv6 arrives whole, in MTU-sized segments with valid checksums,
// several segments of a flow per Read, and PSH only where a run ends; with
// few buffers per Read, a large packet is handed out over several Reads.
func TestSegmentsBulkTCP(t *testing.T) {
	for _, c := range []struct {
		name   string
		gw, cl string
		batch  int
	}{
		{"v4", "10.66.0.1", "10.66.0.2", maxBatch},
		{"v6", "fd66::1", "fd66::2", maxBatch},
		{"v4 few buffers", "10.66.0.1", "10.66.0.2", 5},
	} {
		t.Run(c.name, func(t *testing.T) {
			const mtu = 1420
			gw, cl := netip.MustParseAddr(c.gw), netip.MustParseAddr(c.cl)
			d, err := New([]netip.Addr{gw}, mtu)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			ctun, cnet, err := wgnetstack.CreateNetTUN([]netip.Addr{cl}, nil, mtu)
			if err != nil {
				t.Fatal(err)
			}
			defer ctun.Close()

			var st segStats
			down := make(chan error, 1)
			go func() { // the device's packets to the client
				bufs, sizes := make([][]byte, c.batch), make([]int, c.batch)
				views, sized := make([][]byte, c.batch), make([][]byte, c.batch)
				for i := range bufs {
					bufs[i] = make([]byte, 16+65535)
				}
				for {
					n, err := d.Read(bufs, sizes, 16)
					if err != nil {
						down <- nil
						return
					}
					for i := range n {
						views[i] = bufs[i][16 : 16+sizes[i]]
					}
					if err := checkSegments(views[:n], mtu, &st); err != nil {
						down <- err
						d.Close()
						return
					}
					for i := range n {
						sized[i] = bufs[i][:16+sizes[i]]
					}
					if _, err := ctun.Write(sized[:n], 16); err != nil {
						down <- err
						return
					}
				}
			}()
			go func() { // the client's packets to the device
				buf, sizes := [][]byte{make([]byte, 16+65535)}, []int{0}
				for {
					if _, err := ctun.Read(buf, sizes, 16); err != nil {
						return
					}
					d.Write([][]byte{buf[0][:16+sizes[0]]}, 16)
				}
			}()

			proto := tcpip.NetworkProtocolNumber(ipv4.ProtocolNumber)
			if gw.Is6() {
				proto = ipv6.ProtocolNumber
			}
			ln, err := gonet.ListenTCP(d.Stack(), tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFromSlice(gw.AsSlice()), Port: 80}, proto)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			want := make([]byte, 2<<20)
			for i := range want {
				want[i] = byte(i * 7 >> 5)
			}
			go func() {
				s, err := ln.Accept()
				if err != nil {
					return
				}
				defer s.Close()
				// Uneven writes, so that large packets end mid-segment.
				for rest := want; len(rest) > 0; {
					n := min(len(rest), 100000)
					if _, err := s.Write(rest[:n]); err != nil {
						return
					}
					rest = rest[n:]
				}
			}()
			conn, err := cnet.DialContextTCPAddrPort(context.Background(), netip.AddrPortFrom(gw, 80))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			// A failed check stops the pump; the deadline ends the read then.
			conn.SetReadDeadline(time.Now().Add(time.Minute))
			got, err := io.ReadAll(conn)
			select {
			case err := <-down:
				t.Fatal(err)
			default:
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("received %d bytes, not the %d sent", len(got), len(want))
			}
			d.Close()
			if err := <-down; err != nil {
				t.Fatal(err)
			}
			t.Logf("%d data segments in %d reads, %d with PSH, longest run %d, %d packets freed by re-packing", st.data, st.reads, st.push, st.maxRun, st.freed)
			if st.push*4 > st.data {
				t.Errorf("%d of %d data segments carry PSH", st.push, st.data)
			}
			if st.maxRun < min(c.batch, 8) {
				t.Errorf("longest run of one flow's segments in a Read: %d", st.maxRun)
			}
		})
	}
}
