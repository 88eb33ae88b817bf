package netstack

import "encoding/binary"

// joinRuns re-packs, in place, each run of consecutive data segments of one
// TCP flow among the count packets of a Read (bufs[i][offset:][:sizes[i]]):
// same addresses and ports, next sequence number each. A run made of
// several of gVisor's large packets has a short segment where each packet
// ended, PSH on it, and each packet's acknowledgement, window and
// timestamps; re-packed, it is full-size segments (the last may be short)
// that all carry the run's newest header (its last packet's), with PSH on
// the last only. Packets freed at the end of a run get size 0, which
// wireguard-go skips.
//
// Why: wireguard-go sends a run of equal-sized datagrams as one UDP GSO
// message, and the client's tun GRO merges only segments with equal TCP
// options that follow full-size ones. gVisor sends a flow's data in bursts
// of the size each ACK opens (~20 segments here, where Linux's TSO
// deferral waits for ~64 KiB), so without this the client wrote one TUN
// segment, and acknowledged, per burst: 41 per MiB against 22 fed by a
// kernel TCP sender, at ~30% more CPU per MiB (BenchmarkNetstackMode).
//
// The newest header on earlier data is what the sender would have written
// had it built the whole run now, when it leaves: the acknowledgement and
// window are its current ones, and TSval stays non-decreasing along the
// stream (no later packet carries an older one).
//
// Packets marked in unsummed (cut segments whose TCP checksum is still to
// be made) get it here: re-packed ones as they are packed, the others
// after.
func joinRuns(bufs [][]byte, sizes []int, offset, count int, unsummed []bool) {
	for i := 0; i < count; {
		j, mss, repack := runAt(bufs, sizes, offset, i, count)
		if repack {
			pack(bufs, sizes, offset, i, j, mss)
			clear(unsummed[i:j])
		}
		i = j
	}
	for i, u := range unsummed {
		if u && sizes[i] > 0 {
			p := bufs[i][offset : offset+sizes[i]]
			if tp, ok := tcpHeader(p); ok {
				sumTCP(p, tp)
			}
		}
	}
}

// runAt finds the run of data segments starting at packet i: its end j, its
// segment size (the largest payload in it), and whether re-packing changes
// anything (a short or PSH segment before the last, or differing headers).
func runAt(bufs [][]byte, sizes []int, offset, i, count int) (j, mss int, repack bool) {
	h := bufs[i][offset : offset+sizes[i]]
	tp, hl, payload, ok := dataSegment(h)
	if !ok {
		return i + 1, 0, false
	}
	mss = payload
	seq := binary.BigEndian.Uint32(h[tp+4:]) + uint32(payload)
	short := false // a segment before the current one is short or has PSH
	for j = i + 1; j < count; j++ {
		q := bufs[j][offset : offset+sizes[j]]
		tq, ql, qp, ok := dataSegment(q)
		if !ok || tq != tp || ql != hl || q[0]>>4 != h[0]>>4 || !sameFlow(h, q, tp) ||
			binary.BigEndian.Uint32(q[tq+4:]) != seq {
			break
		}
		prev := bufs[j-1][offset : offset+sizes[j-1]]
		prevPayload := sizes[j-1] - hl
		if prevPayload < mss || qp > mss || prev[tp+13]&tcpPSH != 0 || !sameHeader(h, q, tp, hl) {
			short = true
		}
		mss = max(mss, qp)
		seq += uint32(qp)
	}
	return j, mss, short && j-i > 1
}

// sameHeader says whether TCP segments p and q (TCP header at tp, headers
// hl long) carry the same acknowledgement, window and options; sequence
// number, PSH and checksum aside.
func sameHeader(p, q []byte, tp, hl int) bool {
	return string(p[tp+8:tp+13]) == string(q[tp+8:tp+13]) && // acknowledgement, data offset
		p[tp+13]&^tcpPSH == q[tp+13]&^tcpPSH &&
		string(p[tp+14:tp+16]) == string(q[tp+14:tp+16]) && // window
		string(p[tp+20:hl]) == string(q[tp+20:hl]) // options
}

// dataSegment parses an IPv4 or IPv6 TCP segment with payload and only ACK
// (and maybe PSH) set: TCP header offset, header length, payload length.
func dataSegment(p []byte) (tp, hl, payload int, ok bool) {
	tp, ok = tcpHeader(p)
	if !ok || p[tp+13]&^tcpPSH != tcpACK {
		return 0, 0, 0, false
	}
	hl = tp + int(p[tp+12]>>4)*4
	if p[0]>>4 == 4 && tp != 20 {
		return 0, 0, 0, false // IP options: not worth the care
	}
	return tp, hl, len(p) - hl, len(p) > hl
}

// pack re-packs the run bufs[i:j] into segments of mss payload bytes in the
// same buffers, front to back. Segment k takes its bytes from packets k and
// later of the run, which no earlier segment has overwritten, and moves
// packet k's own remaining bytes towards the front of its buffer (copy is a
// memmove), so one pass suffices.
func pack(bufs [][]byte, sizes []int, offset, i, j, mss int) {
	h := bufs[i][offset : offset+sizes[i]]
	tp, hl, _, _ := dataSegment(h)
	var hdr [120]byte
	copy(hdr[:], bufs[j-1][offset:offset+hl]) // the newest header
	ipID := binary.BigEndian.Uint16(h[4:])
	seq := binary.BigEndian.Uint32(h[tp+4:])
	push := bufs[j-1][offset+tp+13]&tcpPSH != 0
	var lens [maxBatch]int
	total := 0
	for k := i; k < j; k++ {
		lens[k-i] = sizes[k] - hl
		total += lens[k-i]
	}
	in, at := i, 0 // the next unread payload byte: packet in, offset at
	out := i
	for done := 0; done < total; out++ {
		n := min(mss, total-done)
		dst := bufs[out][offset:]
		w := hl
		for w < hl+n {
			src := bufs[in][offset+hl+at : offset+hl+lens[in-i]]
			c := copy(dst[w:hl+n], src)
			w += c
			at += c
			if at == lens[in-i] {
				in, at = in+1, 0
			}
		}
		p := dst[:hl+n]
		copy(p, hdr[:hl])
		if p[0]>>4 == 4 {
			binary.BigEndian.PutUint16(p[4:], ipID+uint16(out-i))
		}
		binary.BigEndian.PutUint32(p[tp+4:], seq+uint32(done))
		p[tp+13] &^= tcpPSH
		done += n
		if done == total && push {
			p[tp+13] |= tcpPSH
		}
		finishSegment(p, tp)
		sizes[out] = len(p)
	}
	for ; out < j; out++ {
		sizes[out] = 0
	}
}
