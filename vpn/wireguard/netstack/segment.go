package netstack

import (
	"encoding/binary"

	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// The endpoint claims host GSO: gVisor's TCP hands it one packet of up to
// GSOMaxSize bytes of a flow with headers written once and the TCP checksum
// left partial (pseudo-header only, as Linux's CHECKSUM_PARTIAL), and the
// endpoint cuts it into MSS-sized segments while copying them into
// wireguard-go's buffers, like a NIC doing TSO. Compared with gVisor's own
// software GSO this saves a packet buffer, a header build and a pass
// through the IP layer and the queue per segment, and it gets two things
// right that the client depends on:
//
//   - one queued packet is a whole burst, so a Read hands wireguard-go up to
//     ~47 segments of one flow at once, which it sends as one UDP GSO
//     message; the client's socket receives them as one datagram (UDP GRO)
//     and its tun GRO writes them to its TUN as one 64 KiB segment. Fed one
//     or two segments per Read, the client pays a recvmmsg, a TUN write and a
//     kernel receive for nearly every 1380-byte segment.
//   - PSH (and FIN) stay on the last segment only, as with Linux TSO. gVisor's
//     software GSO copies the flags into every piece, and tun GRO never
//     appends to a segment carrying PSH.

// TCP flag bits in the 14th byte of the TCP header.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpPSH = 0x08
	tcpACK = 0x10
	tcpURG = 0x20
	tcpCWR = 0x80
)

// segments is the number of wire packets pkt becomes (at least 1).
func segments(pkt *stack.PacketBuffer) int {
	mss, payload, ok := tcpGSO(pkt)
	if !ok || payload <= mss {
		return 1
	}
	return (payload + mss - 1) / mss
}

// tcpGSO reports whether pkt is a host-GSO TCP packet, with its segment
// payload size and its payload length.
func tcpGSO(pkt *stack.PacketBuffer) (mss, payload int, ok bool) {
	g := pkt.GSOOptions
	if (g.Type != stack.GSOTCPv4 && g.Type != stack.GSOTCPv6) || !g.NeedsCsum || g.MSS == 0 {
		return 0, 0, false
	}
	hdr := len(pkt.NetworkHeader().Slice()) + len(pkt.TransportHeader().Slice())
	return int(g.MSS), pkt.Size() - hdr, true
}

// packetReader copies byte ranges out of a packet's slices.
type packetReader struct {
	views [][]byte
}

// copyAt copies len(dst) bytes starting at offset off of the packet.
func (r *packetReader) copyAt(dst []byte, off int) {
	for _, v := range r.views {
		if off >= len(v) {
			off -= len(v)
			continue
		}
		n := copy(dst, v[off:])
		dst = dst[n:]
		off = 0
		if len(dst) == 0 {
			return
		}
	}
}

// writeSegments writes segments first..first+len(dsts)-1 of the host-GSO
// TCP packet pkt into dsts[i] (each large enough), with their IP lengths,
// IPv4 IDs and header checksums, TCP sequence numbers and flags set, and
// their full TCP checksums too if sum (otherwise the caller finishes them
// with sumTCP). It returns each segment's size in sizes.
func writeSegments(pkt *stack.PacketBuffer, first int, dsts [][]byte, sizes []int, sum bool) {
	mss, payload, _ := tcpGSO(pkt)
	nh, th := len(pkt.NetworkHeader().Slice()), len(pkt.TransportHeader().Slice())
	hdr := nh + th
	r := packetReader{views: pkt.AsSlices()}
	total := (payload + mss - 1) / mss
	if total == 0 {
		total = 1 // a bare ACK or FIN: only its checksum to finish
	}
	for i, dst := range dsts {
		seg := first + i
		off := seg * mss
		n := min(mss, payload-off)
		r.copyAt(dst[:hdr], 0)
		r.copyAt(dst[hdr:hdr+n], hdr+off)
		p := dst[:hdr+n]
		if p[0]>>4 == 4 {
			binary.BigEndian.PutUint16(p[4:], binary.BigEndian.Uint16(p[4:])+uint16(seg))
		}
		t := p[nh:]
		binary.BigEndian.PutUint32(t[4:], binary.BigEndian.Uint32(t[4:])+uint32(off))
		if seg != total-1 {
			t[13] &^= tcpPSH | tcpFIN
		}
		if seg != 0 {
			t[13] &^= tcpCWR
		}
		if sum {
			finishSegment(p, nh)
		} else {
			setLengths(p, nh)
		}
		sizes[i] = len(p)
	}
}

// finishSegment sets the IP length, the IPv4 header checksum and the TCP
// checksum of the TCP segment p, whose TCP header is at tp.
func finishSegment(p []byte, tp int) {
	setLengths(p, tp)
	sumTCP(p, tp)
}

// setLengths sets the IP length and the IPv4 header checksum of the TCP
// segment p, whose TCP header is at tp.
func setLengths(p []byte, tp int) {
	if p[0]>>4 == 4 {
		binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
		p[10], p[11] = 0, 0
		checksum.Put(p[10:], ^checksum.Checksum(p[:tp], 0))
	} else {
		binary.BigEndian.PutUint16(p[4:], uint16(len(p)-40))
	}
}

// sumTCP sets the TCP checksum of the segment p (IP length set), whose
// TCP header is at tp: over the payload, the costliest pass of cutting a
// packet, so it is made once, after any re-packing (joinRuns).
func sumTCP(p []byte, tp int) {
	var pseudo uint16
	if p[0]>>4 == 4 {
		pseudo = checksum.Checksum(p[12:20], 0)
	} else {
		pseudo = checksum.Checksum(p[8:40], 0)
	}
	t := p[tp:]
	t[16], t[17] = 0, 0
	pseudo = checksum.Combine(pseudo, 6) // protocol TCP
	pseudo = checksum.Combine(pseudo, uint16(len(t)))
	checksum.Put(t[16:], ^checksum.Checksum(t, pseudo))
}

// tcpHeader returns the offset of the TCP header of an unfragmented IPv4
// or IPv6 (no extension headers) TCP packet whose headers fit in p.
func tcpHeader(p []byte) (int, bool) {
	if len(p) < 20 {
		return 0, false
	}
	var off int
	switch p[0] >> 4 {
	case 4:
		off = int(p[0]&0x0f) * 4
		if p[9] != 6 || binary.BigEndian.Uint16(p[6:])&0x3fff != 0 || off < 20 {
			return 0, false
		}
	case 6:
		off = 40
		if len(p) < off || p[6] != 6 {
			return 0, false
		}
	default:
		return 0, false
	}
	if len(p) < off+20 || int(p[off+12]>>4)*4 < 20 || len(p) < off+int(p[off+12]>>4)*4 {
		return 0, false
	}
	return off, true
}

// sameFlow says whether p and q (same IP version, TCP at offset tp) have
// the same addresses and ports.
func sameFlow(p, q []byte, tp int) bool {
	a, b := p[12:20], q[12:20]
	if p[0]>>4 == 6 {
		a, b = p[8:40], q[8:40]
	}
	return string(a) == string(b) && string(p[tp:tp+4]) == string(q[tp:tp+4])
}
