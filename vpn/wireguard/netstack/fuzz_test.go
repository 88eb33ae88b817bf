package netstack

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// fuzzBuf is the size of every buffer of a fuzzed Read, like wireguard-go's
// (all the same size), with room for the offset; small, to keep runs short.
const (
	fuzzOffset = 16
	fuzzBuf    = fuzzOffset + 1200
)

// fuzzBatch turns the fuzzer's bytes into one Read's packets: TCP segments
// of four flows (two IPv4, two IPv6; one of each with a timestamp option)
// described by 6 bytes each, or, when the first byte's top bit is set, the
// next bytes as a raw packet. The segments follow each flow's sequence
// unless told to leave a gap or go back, carry PSH, FIN, acknowledgements
// and timestamps as told, and may come with their TCP checksum left to
// make (unsummed), as cut segments do.
func fuzzBatch(data []byte) (pkts [][]byte, unsummed []bool) {
	var seq [4]uint32
	for i := range seq {
		seq[i] = uint32(i) << 28
	}
	for len(data) >= 6 && len(pkts) < maxBatch {
		d := data[:6]
		data = data[6:]
		if d[0]&0x80 != 0 {
			n := min(int(binary.BigEndian.Uint16(d[1:]))%(fuzzBuf-fuzzOffset), len(data))
			pkts = append(pkts, slices.Clone(data[:n]))
			unsummed = append(unsummed, false)
			data = data[n:]
			continue
		}
		flow := int(d[0] & 3)
		n := int(binary.BigEndian.Uint16(d[1:])) % 1100
		flags := byte(tcpACK)
		if d[3]&1 != 0 {
			flags |= tcpPSH
		}
		if d[3]&2 != 0 {
			flags |= tcpFIN
		}
		switch {
		case d[3]&4 != 0:
			seq[flow] += uint32(d[4]) + 1 // a gap
		case d[3]&8 != 0:
			seq[flow] -= uint32(d[4]) // a retransmission
		}
		payload := make([]byte, n)
		for k := range payload {
			payload[k] = byte((seq[flow] + uint32(k)) * 31)
		}
		p := fuzzSeg(flow, seq[flow], uint32(d[4]&3), uint32(d[5]&3), d[5]&4 != 0, flags, payload)
		seq[flow] += uint32(n)
		cut := d[3]&16 != 0
		if cut {
			tp, _ := tcpHeader(p)
			p[tp+16], p[tp+17] = 0, 0
		}
		pkts = append(pkts, p)
		unsummed = append(unsummed, cut)
	}
	return pkts, unsummed
}

// fuzzSeg builds a TCP segment of flow with checksums set.
func fuzzSeg(flow int, seq, ack, tsval uint32, window bool, flags byte, payload []byte) []byte {
	v6, ts := flow >= 2, flow%2 == 0
	ip, thl := 20, 20
	if v6 {
		ip = 40
	}
	if ts {
		thl = 32
	}
	p := make([]byte, ip+thl+len(payload))
	if v6 {
		p[0], p[6], p[7] = 0x60, 6, 64
		copy(p[8:], []byte{0xfd, 0x66, 15: 1, 16: 0xfd, 17: 0x66, 31: 2})
	} else {
		p[0], p[8], p[9] = 0x45, 64, 6
		binary.BigEndian.PutUint16(p[4:], uint16(seq))
		copy(p[12:], []byte{10, 66, 0, 1, 10, 66, 0, byte(2 + flow)})
	}
	t := p[ip:]
	binary.BigEndian.PutUint16(t[0:], 80)
	binary.BigEndian.PutUint16(t[2:], uint16(4000+flow))
	binary.BigEndian.PutUint32(t[4:], seq)
	binary.BigEndian.PutUint32(t[8:], 1000+ack)
	t[12], t[13] = byte(thl/4)<<4, flags
	binary.BigEndian.PutUint16(t[14:], 1000)
	if window {
		t[15]++
	}
	if ts {
		copy(t[20:], []byte{1, 1, 8, 10})
		binary.BigEndian.PutUint32(t[24:], 100+tsval)
		binary.BigEndian.PutUint32(t[28:], 7)
	}
	copy(t[thl:], payload)
	finishSegment(p, ip)
	return p
}

// chunk is a contiguous piece of one flow's bytes, as the data segments of
// a Read carry it, by its starting sequence number.
type chunk struct {
	seq  uint32
	data []byte
}

// streams reads the data segments among pkts into each flow's chunks.
func streams(pkts [][]byte) map[string][]chunk {
	out := map[string][]chunk{}
	for _, p := range pkts {
		tp, hl, n, ok := dataSegment(p)
		if !ok {
			continue
		}
		a := p[12:20]
		if p[0]>>4 == 6 {
			a = p[8:40]
		}
		flow := string(a) + string(p[tp:tp+4])
		seq := binary.BigEndian.Uint32(p[tp+4:])
		cs := out[flow]
		if k := len(cs) - 1; k >= 0 && cs[k].seq+uint32(len(cs[k].data)) == seq {
			cs[k].data = append(cs[k].data, p[hl:hl+n]...)
		} else {
			cs = append(cs, chunk{seq, slices.Clone(p[hl : hl+n])})
		}
		out[flow] = cs
	}
	return out
}

// FuzzJoinRuns: re-packing the segments of one Read (what gVisor and, by
// its TCP options and windows, the peer put in them) keeps every flow's
// byte stream and sequence numbers, leaves every other packet as it was,
// stays inside the buffers, and gives every segment it writes, and every
// cut segment, valid checksums.
func FuzzJoinRuns(f *testing.F) {
	seg := func(flow int, n int, flags byte) []byte {
		return []byte{byte(flow), byte(n >> 8), byte(n), flags, 0, 0}
	}
	// Two of gVisor's bursts of one flow, each ending short with PSH,
	// then another flow, as TestJoinRuns.
	f.Add(slices.Concat(seg(0, 1000, 0), seg(0, 300, 1), seg(0, 1000, 16), seg(0, 700, 17), seg(1, 5, 1)))
	f.Add(slices.Concat(seg(2, 1000, 0), seg(2, 300, 1), seg(3, 1000, 0), seg(2, 1000, 0), seg(2, 10, 3)))
	f.Add(slices.Concat(seg(0, 900, 0), seg(0, 1099, 0), seg(0, 0, 0), seg(0, 900, 4), seg(0, 900, 8)))
	f.Add(slices.Concat(seg(1, 500, 0), []byte{0x80, 0, 40}, make([]byte, 43), seg(1, 500, 1)))
	f.Add(seg(0, 236, 2|16))      // a cut FIN with data: summed, not re-packed
	opts := make([]byte, 24+20+5) // IPv4 with options: left alone
	opts[0], opts[9], opts[24+12], opts[24+13] = 0x46, 6, 5<<4, tcpACK
	f.Add(slices.Concat(seg(1, 500, 0), []byte{0x80, 0, byte(len(opts)), 0, 0, 0}, opts, seg(1, 500, 0)))
	f.Fuzz(func(t *testing.T, data []byte) {
		in, unsummed := fuzzBatch(data)
		bufs, sizes := make([][]byte, len(in)), make([]int, len(in))
		for i, p := range in {
			bufs[i] = make([]byte, fuzzBuf)
			copy(bufs[i][fuzzOffset:], p)
			sizes[i] = len(p)
		}
		joinRuns(bufs, sizes, fuzzOffset, len(in), slices.Clone(unsummed))

		out := make([][]byte, len(in))
		for i, n := range sizes {
			if n < 0 || fuzzOffset+n > len(bufs[i]) || len(bufs[i]) != fuzzBuf {
				t.Fatalf("packet %d: size %d in a buffer of %d", i, n, len(bufs[i]))
			}
			out[i] = bufs[i][fuzzOffset : fuzzOffset+n]
		}
		if err := sameStreams(streams(in), streams(out)); err != nil {
			t.Fatal(err)
		}
		var st segStats
		for i, p := range out {
			if _, _, _, data := dataSegment(in[i]); !data {
				q := slices.Clone(p)
				if tp, ok := tcpHeader(q); ok && unsummed[i] {
					q[tp+16], q[tp+17] = 0, 0 // the checksum to make, made
				}
				if !bytes.Equal(q, in[i]) {
					t.Fatalf("packet %d, no data segment, changed", i)
				}
			}
			if len(p) > 0 && (unsummed[i] || !bytes.Equal(p, in[i])) {
				if err := checkSegments([][]byte{p}, fuzzBuf, &st); err != nil {
					t.Fatalf("packet %d: %v", i, err)
				}
			}
		}
	})
}

func sameStreams(a, b map[string][]chunk) error {
	if len(a) != len(b) {
		return fmt.Errorf("%d flows became %d", len(a), len(b))
	}
	for flow, ca := range a {
		cb := b[flow]
		if len(ca) != len(cb) {
			return fmt.Errorf("flow %x: %d chunks became %d", flow, len(ca), len(cb))
		}
		for k := range ca {
			if ca[k].seq != cb[k].seq || !bytes.Equal(ca[k].data, cb[k].data) {
				return fmt.Errorf("flow %x: chunk %d (seq %d, %d bytes) became seq %d, %d bytes", flow, k,
					ca[k].seq, len(ca[k].data), cb[k].seq, len(cb[k].data))
			}
		}
	}
	return nil
}

// FuzzWriteSegments: a host-GSO TCP packet from gVisor, cut into segments
// over one Read or two (the endpoint hands a packet out over several when
// the buffers run out), becomes segments that carry its payload in order,
// each with its sequence number, IPv4 ID and lengths, PSH and FIN on the
// last only and CWR on the first only, its other header bytes unchanged,
// and valid checksums once summed.
func FuzzWriteSegments(f *testing.F) {
	f.Add(false, true, uint16(1380), bytes.Repeat([]byte("abc"), 3000), byte(tcpACK|tcpPSH), true, uint8(3))
	f.Add(true, false, uint16(1200), make([]byte, 1200), byte(tcpACK|tcpFIN|tcpCWR), false, uint8(0))
	f.Add(false, false, uint16(536), []byte{}, byte(tcpACK), true, uint8(0)) // a bare ACK
	f.Add(true, true, uint16(1), []byte("xyz"), byte(tcpACK|tcpPSH|tcpCWR), false, uint8(1))
	f.Fuzz(func(t *testing.T, v6, ts bool, mss uint16, payload []byte, flags byte, sum bool, split uint8) {
		if mss == 0 || mss > 1400 || len(payload) > 60000 || (len(payload)+int(mss)-1)/int(mss) > maxBatch {
			return
		}
		flow := 0
		if v6 {
			flow = 2
		}
		if !ts {
			flow++
		}
		const seq = 0xfffffff0 // wraps within the packet
		whole := fuzzSeg(flow, seq, 0, 0, false, flags, payload)
		nh := 20
		gsoType := stack.GSOTCPv4
		if v6 {
			nh, gsoType = 40, stack.GSOTCPv6
		}
		hdr := len(whole) - len(payload)
		pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{ReserveHeaderBytes: hdr,
			Payload: buffer.MakeWithData(slices.Clone(payload))})
		defer pkt.DecRef()
		copy(pkt.TransportHeader().Push(hdr-nh), whole[nh:hdr])
		copy(pkt.NetworkHeader().Push(nh), whole[:nh])
		pkt.GSOOptions = stack.GSO{Type: gsoType, NeedsCsum: true, MSS: mss, L3HdrLen: uint16(nh)}

		total := segments(pkt)
		bufs := make([][]byte, total)
		for i := range bufs {
			bufs[i] = make([]byte, hdr+int(mss))
		}
		sizes := make([]int, total)
		k := int(split) % total
		writeSegments(pkt, 0, bufs[:k], sizes[:k], sum)
		writeSegments(pkt, k, bufs[k:], sizes[k:], sum)

		var got []byte
		var st segStats
		for i, n := range sizes {
			p := bufs[i][:n]
			if n < hdr {
				t.Fatalf("segment %d: %d bytes", i, n)
			}
			if !sum {
				sumTCP(p, nh)
			}
			if err := checkSegments([][]byte{p}, hdr+int(mss), &st); err != nil {
				t.Fatalf("segment %d of %d: %v", i, total, err)
			}
			tc := p[nh:]
			if s := binary.BigEndian.Uint32(tc[4:]); s != seq+uint32(len(got)) {
				t.Fatalf("segment %d: seq %d, want %d", i, s, seq+uint32(len(got)))
			}
			want := flags
			if i != total-1 {
				want &^= tcpPSH | tcpFIN
			}
			if i != 0 {
				want &^= tcpCWR
			}
			if tc[13] != want {
				t.Fatalf("segment %d of %d: flags %#x, want %#x", i, total, tc[13], want)
			}
			// Beyond lengths, IDs, checksums and sequence numbers, the
			// headers are the packet's.
			q, w := slices.Clone(p[:hdr]), slices.Clone(whole[:hdr])
			for _, h := range [][]byte{q, w} {
				if v6 {
					clear(h[4:6])
				} else {
					clear(h[2:6])
					clear(h[10:12])
				}
				clear(h[nh+4 : nh+8])
				h[nh+13] = 0
				clear(h[nh+16 : nh+18])
			}
			if !bytes.Equal(q, w) {
				t.Fatalf("segment %d header %x, packet's %x", i, q, w)
			}
			if !v6 && binary.BigEndian.Uint16(p[4:]) != uint16(seq&0xffff)+uint16(i) {
				t.Fatalf("segment %d: IPv4 ID %d", i, binary.BigEndian.Uint16(p[4:]))
			}
			got = append(got, p[hdr:]...)
		}
		if !bytes.Equal(got, payload) {
			t.Fatalf("the segments carry %d other bytes than the packet's %d", len(got), len(payload))
		}
	})
}
