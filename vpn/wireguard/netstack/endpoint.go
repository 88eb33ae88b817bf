package netstack

import (
	"sync"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// maxBatch bounds the packets one ReadBatch takes.
const maxBatch = 128

// Endpoint is a batched, blocking gVisor link endpoint. The stack writes
// outbound packets into a bounded queue (parking while it is full); the
// tun.Device side drains them in batches.
type Endpoint struct {
	mtu uint32

	mu       sync.Mutex
	notEmpty sync.Cond // signalled when a packet is queued or on close
	notFull  sync.Cond // signalled when packets are taken or on close
	queue    []*stack.PacketBuffer
	head     int // index of the oldest queued packet
	headDone int // segments of the head packet already read
	n        int // queued packets
	closed   bool
	disp     stack.NetworkDispatcher
	onClose  func()
}

var (
	_ stack.LinkEndpoint = (*Endpoint)(nil)
	_ stack.GSOEndpoint  = (*Endpoint)(nil)
)

// gsoMaxSize bounds a host-GSO packet: its IP length field must hold it.
const gsoMaxSize = 1<<16 - 1

// GSOMaxSize implements stack.GSOEndpoint: TCP hands the endpoint packets
// of up to 64 KiB, which ReadBatch cuts to the MSS (segment.go).
func (e *Endpoint) GSOMaxSize() uint32 { return gsoMaxSize }

// SupportedGSO implements stack.GSOEndpoint: "host" GSO, done by this
// endpoint as a NIC would.
func (e *Endpoint) SupportedGSO() stack.SupportedGSO { return stack.HostGSOSupported }

// NewEndpoint returns an endpoint with an outbound queue of size packets.
func NewEndpoint(size int, mtu uint32) *Endpoint {
	e := &Endpoint{mtu: mtu, queue: make([]*stack.PacketBuffer, size)}
	e.notEmpty.L = &e.mu
	e.notFull.L = &e.mu
	return e
}

// WritePackets queues the stack's outbound packets, waiting while the queue
// is full: backpressure rather than loss.
func (e *Endpoint) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, pkt := range pkts.AsSlice() {
		for e.n == len(e.queue) && !e.closed {
			e.notFull.Wait()
		}
		if e.closed {
			if n == 0 {
				return 0, &tcpip.ErrClosedForSend{}
			}
			break
		}
		e.queue[(e.head+e.n)%len(e.queue)] = pkt.IncRef()
		e.n++
		n++
	}
	e.notEmpty.Signal()
	return n, nil
}

// ReadBatch waits for at least one outbound packet and copies up to len(bufs)
// packets into bufs[i][offset:], setting sizes[i]; a host-GSO TCP packet
// is cut into its segments on the way (segment.go), continuing in the next
// call if the buffers run out. A packet larger than its buffer is dropped.
// It returns 0, false once the endpoint is closed.
func (e *Endpoint) ReadBatch(bufs [][]byte, sizes []int, offset int) (int, bool) {
	slots := min(len(bufs), maxBatch)
	e.mu.Lock()
	for e.n == 0 && !e.closed {
		e.notEmpty.Wait()
	}
	if e.n == 0 || slots == 0 {
		e.mu.Unlock()
		return 0, !e.closed
	}
	// Take whole packets while their segments fit; the head packet may be
	// taken in part, keeping its place (and the queue's reference) until
	// its last segment is out.
	var scratch [maxBatch]take
	takes := scratch[:0]
	used := 0
	for e.n > 0 && used < slots {
		pkt := e.queue[e.head]
		left := segments(pkt) - e.headDone
		if left > slots-used && used > 0 {
			break
		}
		t := take{pkt: pkt, first: e.headDone, n: min(left, slots-used)}
		used += t.n
		if t.n < left {
			e.headDone += t.n
			pkt.IncRef()
		} else {
			e.queue[e.head] = nil
			e.head = (e.head + 1) % len(e.queue)
			e.n--
			e.headDone = 0
		}
		takes = append(takes, t)
	}
	e.notFull.Broadcast()
	e.mu.Unlock()

	// With several packets in one Read, runs of one flow may be re-packed,
	// which sums their segments anew: cut segments are summed only after.
	join := len(takes) > 1
	var unsummed [maxBatch]bool
	count := 0
	for _, t := range takes {
		n, cut := t.copyOut(bufs[count:count+t.n], sizes[count:count+t.n], offset, !join)
		for i := range n {
			unsummed[count+i] = cut && join
		}
		count += n
		t.pkt.DecRef()
	}
	if join {
		joinRuns(bufs, sizes, offset, count, unsummed[:count])
	}
	return count, true
}

// take is a packet's segments first..first+n-1, taken by a ReadBatch.
type take struct {
	pkt      *stack.PacketBuffer
	first, n int
}

// copyOut writes the taken segments into bufs[i][offset:] and returns how
// many it wrote (less than t.n only if a packet did not fit, and was
// dropped), and whether they were cut from a host-GSO packet: their TCP
// checksums are then left to sumTCP unless sum.
func (t take) copyOut(bufs [][]byte, sizes []int, offset int, sum bool) (n int, cut bool) {
	if mss, payload, ok := tcpGSO(t.pkt); ok {
		hdr := t.pkt.Size() - payload
		dsts := make([][]byte, 0, maxBatch)
		for _, b := range bufs {
			if len(b)-offset < hdr+mss {
				return 0, true
			}
			dsts = append(dsts, b[offset:])
		}
		writeSegments(t.pkt, t.first, dsts, sizes, sum)
		return len(dsts), true
	}
	if t.pkt.Size() > len(bufs[0])-offset {
		return 0, false
	}
	w := offset
	for _, s := range t.pkt.AsSlices() {
		w += copy(bufs[0][w:], s)
	}
	sizes[0] = w - offset
	return 1, false
}

// Inject hands one inbound IP packet to the stack.
func (e *Endpoint) Inject(proto tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	if d := e.dispatcher(); d != nil {
		d.DeliverNetworkPacket(proto, pkt)
	}
}

// dispatcher is the stack's side of the endpoint, nil before Attach.
func (e *Endpoint) dispatcher() stack.NetworkDispatcher {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.disp
}

// Close wakes every waiter and drops queued packets.
func (e *Endpoint) Close() {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	e.headDone = 0
	for e.n > 0 {
		e.queue[e.head].DecRef()
		e.queue[e.head] = nil
		e.head = (e.head + 1) % len(e.queue)
		e.n--
	}
	onClose := e.onClose
	e.notEmpty.Broadcast()
	e.notFull.Broadcast()
	e.mu.Unlock()
	if onClose != nil {
		onClose()
	}
}

// MTU implements stack.LinkEndpoint.
func (e *Endpoint) MTU() uint32 { return e.mtu }

// SetMTU implements stack.LinkEndpoint; the MTU is fixed at creation.
func (e *Endpoint) SetMTU(uint32) {}

// MaxHeaderLength implements stack.LinkEndpoint: IP has no link header.
func (e *Endpoint) MaxHeaderLength() uint16 { return 0 }

// LinkAddress implements stack.LinkEndpoint.
func (e *Endpoint) LinkAddress() tcpip.LinkAddress { return "" }

// SetLinkAddress implements stack.LinkEndpoint.
func (e *Endpoint) SetLinkAddress(tcpip.LinkAddress) {}

// Capabilities implements stack.LinkEndpoint. Inbound checksums are not
// verified again: WireGuard authenticated every packet.
func (e *Endpoint) Capabilities() stack.LinkEndpointCapabilities {
	return stack.CapabilityRXChecksumOffload
}

// Attach implements stack.LinkEndpoint.
func (e *Endpoint) Attach(d stack.NetworkDispatcher) {
	e.mu.Lock()
	e.disp = d
	e.mu.Unlock()
}

// IsAttached implements stack.LinkEndpoint.
func (e *Endpoint) IsAttached() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.disp != nil
}

// Wait implements stack.LinkEndpoint; the endpoint owns no goroutines.
func (e *Endpoint) Wait() {}

// ARPHardwareType implements stack.LinkEndpoint.
func (e *Endpoint) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareNone }

// AddHeader implements stack.LinkEndpoint.
func (e *Endpoint) AddHeader(*stack.PacketBuffer) {}

// ParseHeader implements stack.LinkEndpoint.
func (e *Endpoint) ParseHeader(*stack.PacketBuffer) bool { return true }

// SetOnCloseAction implements stack.LinkEndpoint.
func (e *Endpoint) SetOnCloseAction(f func()) {
	e.mu.Lock()
	e.onClose = f
	e.mu.Unlock()
}
