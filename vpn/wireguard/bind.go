package wireguard

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.zx2c4.com/wireguard/conn"
)

// socketBuffer is the UDP socket's send and receive buffer.
const socketBuffer = 7 << 20

// bindBatch is how many datagrams one receive or send call moves.
const bindBatch = 128

// batchConn is what x/net's ipv4 and ipv6 PacketConns share: recvmmsg and
// sendmmsg on the socket.
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// socketBind is a conn.Bind over a UDP socket the node already bound (the
// listener registry owns it). Close only stops the receive functions: the
// device closes and reopens its bind on every up/down, while the socket lives
// as long as the Server.
type socketBind struct {
	udp   *net.UDPConn
	batch batchConn

	gso atomic.Bool // UDP segmentation offload is on
	gro bool        // UDP receive offload is on: reads may be coalesced

	// knock sees every handshake initiation before the device does (set
	// once, before the device opens the bind); false drops the message,
	// which cannot be valid.
	knock func(msg []byte, src netip.AddrPort) bool
	// initiating sees every handshake initiation the device sends, and
	// where to (set once, like knock); false: do not send it. answering
	// sees every handshake response.
	initiating func(dst netip.AddrPort) bool
	answering  func(dst netip.AddrPort)

	mu     sync.Mutex
	closed bool

	// batches holds *msgBatch: the message arrays of one receive or send
	// call are large (~20 KiB), and allocating them per call cost a sixth
	// of the netstack server's CPU in zeroing alone.
	batches sync.Pool
}

// msgBatch is the scratch of one receive or send call.
type msgBatch struct {
	msgs [bindBatch]ipv4.Message
	oob  [bindBatch][gsoOOBSize]byte
	one  [bindBatch][1][]byte // single-buffer iovecs
}

func (b *socketBind) getBatch() *msgBatch {
	if m, ok := b.batches.Get().(*msgBatch); ok {
		return m
	}
	return new(msgBatch)
}

// putBatch drops the batch's references to packet buffers and keeps it.
func (b *socketBind) putBatch(m *msgBatch, n int) {
	for i := range n {
		m.msgs[i] = ipv4.Message{}
		m.one[i][0] = nil
	}
	b.batches.Put(m)
}

func newSocketBind(pc net.PacketConn) (*socketBind, error) {
	udp, ok := pc.(*net.UDPConn)
	if !ok {
		return nil, fmt.Errorf("wireguard needs a UDP socket, got %T", pc)
	}
	// Large socket buffers, as wireguard-go's own bind sets: bursts of a
	// fast peer must not overflow the default ~200 KiB.
	_ = udp.SetReadBuffer(socketBuffer)
	_ = udp.SetWriteBuffer(socketBuffer)
	forceBuffers(udp, socketBuffer)
	b := &socketBind{udp: udp, closed: true}
	b.gso.Store(gsoSupported(udp))
	b.gro = enableGRO(udp)
	if la, ok := udp.LocalAddr().(*net.UDPAddr); ok && la.IP.To4() != nil {
		b.batch = ipv4.NewPacketConn(udp)
	} else {
		b.batch = ipv6.NewPacketConn(udp)
	}
	return b, nil
}

// Open implements conn.Bind; the port is the socket's, whatever is asked.
func (b *socketBind) Open(uint16) ([]conn.ReceiveFunc, uint16, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		return nil, 0, conn.ErrBindAlreadyOpen
	}
	b.closed = false
	if err := b.udp.SetReadDeadline(time.Time{}); err != nil {
		return nil, 0, fmt.Errorf("opening wireguard socket: %w", err)
	}
	port := uint16(b.udp.LocalAddr().(*net.UDPAddr).Port)
	return []conn.ReceiveFunc{b.receive}, port, nil
}

func (b *socketBind) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

func (b *socketBind) receive(bufs [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
	if b.gro {
		return b.receiveGRO(bufs, sizes, eps)
	}
	n := min(len(bufs), bindBatch)
	mb := b.getBatch()
	defer b.putBatch(mb, n)
	msgs := &mb.msgs
	for i := range n {
		mb.one[i][0] = bufs[i]
		msgs[i].Buffers = mb.one[i][:]
	}
	got, err := b.batch.ReadBatch(msgs[:n], 0)
	if err != nil {
		if b.isClosed() || errors.Is(err, net.ErrClosed) {
			return 0, net.ErrClosed
		}
		return 0, err
	}
	for i := range got {
		sizes[i] = msgs[i].N
		ua, _ := msgs[i].Addr.(*net.UDPAddr)
		if ua == nil {
			sizes[i] = 0
			eps[i] = endpoint{}
			continue
		}
		eps[i] = endpoint{ap: ua.AddrPort()}
	}
	b.knockAll(bufs[:got], sizes, eps)
	return got, nil
}

// knockAll shows the handshake initiations among bufs to knock; those it
// refuses get size 0, which the device skips.
func (b *socketBind) knockAll(bufs [][]byte, sizes []int, eps []conn.Endpoint) {
	if b.knock == nil {
		return
	}
	for i, buf := range bufs {
		if isInitiation(buf[:sizes[i]]) {
			ep, _ := eps[i].(endpoint)
			if !b.knock(buf[:sizes[i]], ep.ap) {
				sizes[i] = 0
			}
		}
	}
}

// receiveGRO is receive where the kernel coalesces a peer's datagrams (UDP
// receive offload): a few messages are read into the last of bufs, each up
// to gsoMaxSegments datagrams, and split forward into bufs from the first.
// A split never overtakes a message not yet split (at most i+1 datagrams
// precede message i); one that would is cut short, as UDP may.
func (b *socketBind) receiveGRO(bufs [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
	n := min(len(bufs), bindBatch)
	at := n - max(1, n/gsoMaxSegments)
	mb := b.getBatch()
	defer b.putBatch(mb, n)
	msgs := &mb.msgs
	for i := at; i < n; i++ {
		mb.one[i][0] = bufs[i]
		msgs[i].Buffers = mb.one[i][:]
		msgs[i].OOB = mb.oob[i][:]
	}
	got, err := b.batch.ReadBatch(msgs[at:n], 0)
	if err != nil {
		if b.isClosed() || errors.Is(err, net.ErrClosed) {
			return 0, net.ErrClosed
		}
		return 0, err
	}
	out := 0
	for i := at; i < at+got; i++ {
		m := &msgs[i]
		ua, _ := m.Addr.(*net.UDPAddr)
		if ua == nil || m.N == 0 {
			continue
		}
		ep := endpoint{ap: ua.AddrPort()}
		seg := groSize(m.OOB[:m.NN])
		if seg <= 0 {
			seg = m.N
		}
		for start := 0; start < m.N && out <= i; start += seg {
			end := min(start+seg, m.N)
			sizes[out] = copy(bufs[out], bufs[i][start:end])
			eps[out] = ep
			out++
		}
	}
	b.knockAll(bufs[:out], sizes, eps)
	return out, nil
}

// Close implements conn.Bind: it unblocks the receive function without
// closing the socket.
func (b *socketBind) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	return b.udp.SetReadDeadline(time.Unix(1, 0))
}

// SetMark implements conn.Bind; marks are not used.
func (b *socketBind) SetMark(uint32) error { return nil }

// Send implements conn.Bind. Where the kernel offers UDP segmentation
// offload, runs of equal-sized datagrams (what a bulk flow makes) leave as
// one message each, split by the kernel; a path that refuses it turns the
// offload off for good.
func (b *socketBind) Send(bufs [][]byte, ep conn.Endpoint) error {
	e, ok := ep.(endpoint)
	if !ok {
		return conn.ErrWrongEndpointType
	}
	// The device sends its handshake messages alone. One held back looks
	// lost to it, and is retried as if it were.
	if b.initiating != nil && len(bufs) == 1 {
		switch {
		case isInitiation(bufs[0]):
			if !b.initiating(e.ap) {
				return nil
			}
		case isResponse(bufs[0]):
			b.answering(e.ap)
		}
	}
	ua := net.UDPAddrFromAddrPort(e.ap)
	if b.gso.Load() && len(bufs) > 1 {
		err := b.sendGSO(bufs, ua)
		if err == nil || !gsoRefused(err) {
			return err
		}
		b.gso.Store(false)
	}
	mb := b.getBatch()
	defer b.putBatch(mb, min(len(bufs), bindBatch))
	msgs := &mb.msgs
	for len(bufs) > 0 {
		n := min(len(bufs), bindBatch)
		for i := range n {
			mb.one[i][0] = bufs[i]
			msgs[i] = ipv4.Message{Buffers: mb.one[i][:], Addr: ua}
		}
		if err := b.writeAll(msgs[:n]); err != nil {
			return err
		}
		bufs = bufs[n:]
	}
	return nil
}

// sendGSO sends bufs coalesced: each message carries up to
// gsoMaxSegments datagrams of one size (the last may be shorter) as its
// iovecs, with a UDP_SEGMENT control message.
func (b *socketBind) sendGSO(bufs [][]byte, ua *net.UDPAddr) error {
	mb := b.getBatch()
	used := 0
	defer func() { b.putBatch(mb, used) }()
	msgs, oob := &mb.msgs, &mb.oob
	n := 0
	for i := 0; i < len(bufs); {
		if n == bindBatch {
			if err := b.writeAll(msgs[:n]); err != nil {
				return err
			}
			n = 0
		}
		size, total, j := len(bufs[i]), len(bufs[i]), i+1
		for j < len(bufs) && j-i < gsoMaxSegments && len(bufs[j]) <= size && total+len(bufs[j]) <= gsoMaxPayload {
			total += len(bufs[j])
			j++
			if len(bufs[j-1]) < size {
				break // a shorter datagram ends a run
			}
		}
		msgs[n] = ipv4.Message{Buffers: bufs[i:j], Addr: ua}
		if j-i > 1 {
			msgs[n].OOB = putGSOSize(oob[n][:], uint16(size))
		}
		n++
		used = max(used, n)
		i = j
	}
	return b.writeAll(msgs[:n])
}

func (b *socketBind) writeAll(msgs []ipv4.Message) error {
	for sent := 0; sent < len(msgs); {
		k, err := b.batch.WriteBatch(msgs[sent:], 0)
		if err != nil {
			return fmt.Errorf("sending to wireguard peer: %w", err)
		}
		sent += k
	}
	return nil
}

// ParseEndpoint implements conn.Bind.
func (b *socketBind) ParseEndpoint(s string) (conn.Endpoint, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return nil, fmt.Errorf("wireguard endpoint: %w", err)
	}
	return endpoint{ap: ap}, nil
}

// BatchSize implements conn.Bind.
func (b *socketBind) BatchSize() int { return bindBatch }

// endpoint is a peer's UDP address.
type endpoint struct{ ap netip.AddrPort }

func (e endpoint) ClearSrc()           {}
func (e endpoint) SrcToString() string { return "" }
func (e endpoint) DstToString() string { return e.ap.String() }
func (e endpoint) DstIP() netip.Addr   { return e.ap.Addr() }
func (e endpoint) SrcIP() netip.Addr   { return netip.Addr{} }
func (e endpoint) DstToBytes() []byte {
	b, _ := e.ap.MarshalBinary()
	return b
}
