package wireguard

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
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

	mu     sync.Mutex
	closed bool
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
	b := &socketBind{udp: udp, closed: true}
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
	var msgs [bindBatch]ipv4.Message
	n := min(len(bufs), bindBatch)
	for i := range n {
		msgs[i].Buffers = [][]byte{bufs[i]}
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
	return got, nil
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

// Send implements conn.Bind.
func (b *socketBind) Send(bufs [][]byte, ep conn.Endpoint) error {
	e, ok := ep.(endpoint)
	if !ok {
		return conn.ErrWrongEndpointType
	}
	ua := net.UDPAddrFromAddrPort(e.ap)
	var msgs [bindBatch]ipv4.Message
	for len(bufs) > 0 {
		n := min(len(bufs), bindBatch)
		for i := range n {
			msgs[i] = ipv4.Message{Buffers: [][]byte{bufs[i]}, Addr: ua}
		}
		sent := 0
		for sent < n {
			k, err := b.batch.WriteBatch(msgs[sent:n], 0)
			if err != nil {
				return fmt.Errorf("sending to wireguard peer: %w", err)
			}
			sent += k
		}
		bufs = bufs[n:]
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
