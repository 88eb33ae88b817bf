package netstack

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"
)

// tcpSeg builds an IPv4 TCP segment of the flow 10.66.0.1:80 → 10.66.0.2:
// 4000 with a timestamp option, checksums set.
func tcpSeg(seq, ack, tsval uint32, id uint16, flags byte, payload []byte) []byte {
	p := make([]byte, 20+32+len(payload))
	p[0], p[8], p[9] = 0x45, 64, 6
	binary.BigEndian.PutUint16(p[4:], id)
	copy(p[12:], []byte{10, 66, 0, 1, 10, 66, 0, 2})
	t := p[20:]
	binary.BigEndian.PutUint16(t[0:], 80)
	binary.BigEndian.PutUint16(t[2:], 4000)
	binary.BigEndian.PutUint32(t[4:], seq)
	binary.BigEndian.PutUint32(t[8:], ack)
	t[12], t[13] = 8<<4, tcpACK|flags
	binary.BigEndian.PutUint16(t[14:], 1000)
	copy(t[20:], []byte{1, 1, 8, 10})
	binary.BigEndian.PutUint32(t[24:], tsval)
	binary.BigEndian.PutUint32(t[28:], 7)
	copy(t[32:], payload)
	finishSegment(p, 20)
	return p
}

// TestJoinRuns: two of gVisor's packets of one flow (each ending short and
// with PSH, each with its own acknowledgement and timestamp) become
// full-size segments under the newest header, PSH on the last only, the
// byte stream unchanged, every checksum made; a packet of another flow in
// between ends a run.
func TestJoinRuns(t *testing.T) {
	stream := make([]byte, 3000)
	for i := range stream {
		stream[i] = byte(i * 13)
	}
	const seq = 1 << 20
	in := [][]byte{
		tcpSeg(seq, 5, 100, 10, 0, stream[:1000]),
		tcpSeg(seq+1000, 5, 100, 11, tcpPSH, stream[1000:1300]),
		tcpSeg(seq+1300, 6, 101, 12, 0, stream[1300:2300]),
		tcpSeg(seq+2300, 6, 101, 13, tcpPSH, stream[2300:3000]),
		tcpSeg(9, 5, 100, 14, tcpPSH, []byte("other")), // not contiguous: a run of its own
	}
	const off = 16
	bufs, sizes := make([][]byte, len(in)), make([]int, len(in))
	for i, p := range in {
		bufs[i] = make([]byte, off+2000)
		copy(bufs[i][off:], p)
		sizes[i] = len(p)
	}
	// Cut segments come with their TCP checksums still to make: the run's
	// get them as they are re-packed, the other flow's after.
	unsummed := make([]bool, len(in))
	for i := range in {
		b := bufs[i][off:]
		b[20+16], b[20+17] = 0, 0
		unsummed[i] = true
	}
	joinRuns(bufs, sizes, off, len(in), unsummed)

	if want := []int{1052, 1052, 1052, 0, 57}; !slices.Equal(sizes, want) {
		t.Fatalf("sizes %v, want %v", sizes, want)
	}
	var got []byte
	var st segStats
	var views [][]byte
	for i, n := range sizes {
		p := bufs[i][off : off+n]
		views = append(views, p)
		if n == 0 || i == 4 {
			continue
		}
		tc := p[20:]
		if s := binary.BigEndian.Uint32(tc[4:]); s != seq+uint32(len(got)) {
			t.Fatalf("segment %d: seq %d, want %d", i, s, seq+len(got))
		}
		if ack, ts := binary.BigEndian.Uint32(tc[8:]), binary.BigEndian.Uint32(tc[24:]); ack != 6 || ts != 101 {
			t.Fatalf("segment %d: ack %d tsval %d, want the newest header's 6 and 101", i, ack, ts)
		}
		if push := tc[13]&tcpPSH != 0; push != (i == 2) {
			t.Fatalf("segment %d: PSH %v", i, push)
		}
		if id := binary.BigEndian.Uint16(p[4:]); id != uint16(10+i) {
			t.Fatalf("segment %d: IP ID %d", i, id)
		}
		got = append(got, tc[32:]...)
	}
	if !bytes.Equal(got, stream) {
		t.Fatal("the re-packed run carries other bytes")
	}
	if err := checkSegments(views, 1500, &st); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(views[4], in[4]) {
		t.Fatal("the other flow's packet changed")
	}
}
