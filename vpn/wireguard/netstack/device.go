package netstack

import (
	"fmt"
	"net/netip"
	"os"
	"sync"
	"syscall"

	"golang.zx2c4.com/wireguard/tun"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/stack/gro"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// nicID is the one NIC of the stack.
const nicID = 1

// QueueLen is the outbound queue of the endpoint, in packets.
const QueueLen = 4096

// Device is a tun.Device backed by a gVisor stack. Create it with New; the
// caller attaches its transport handlers to Stack before traffic flows.
type Device struct {
	ep     *Endpoint
	stack  *stack.Stack
	mtu    int
	addrs  []netip.Addr // the stack's own addresses (the gateways)
	events chan tun.Event

	// gros holds *gro.GRO: Write runs on every peer's receive goroutine
	// at once, and each call coalesces its own batch.
	gros sync.Pool

	closeOnce sync.Once
}

var _ tun.Device = (*Device)(nil)

// New builds a stack with one promiscuous, spoofing NIC holding addrs (the
// tunnel gateways, so that they answer ICMP echo) and default routes for
// both families.
func New(addrs []netip.Addr, mtu int) (*Device, error) {
	s := stack.New(stack.Options{
		// Loopback destinations are the egress policy's to refuse, not the
		// stack's (tests allow 127.0.0.1).
		NetworkProtocols: []stack.NetworkProtocolFactory{
			ipv4.NewProtocolWithOptions(ipv4.Options{AllowExternalLoopbackTraffic: true}),
			ipv6.NewProtocolWithOptions(ipv6.Options{AllowExternalLoopbackTraffic: true}),
		},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4, icmp.NewProtocol6},
		HandleLocal:        false,
	})
	d := &Device{ep: NewEndpoint(QueueLen, uint32(mtu)), stack: s, mtu: mtu, addrs: addrs, events: make(chan tun.Event, 1)}
	if err := d.configure(addrs); err != nil {
		s.Close()
		return nil, err
	}
	d.events <- tun.EventUp
	return d, nil
}

func (d *Device) configure(addrs []netip.Addr) error {
	if err := tuneTCP(d.stack); err != nil {
		return err
	}
	if err := d.stack.CreateNIC(nicID, d.ep); err != nil {
		return fmt.Errorf("creating NIC: %v", err)
	}
	if err := d.stack.SetPromiscuousMode(nicID, true); err != nil {
		return fmt.Errorf("promiscuous NIC: %v", err)
	}
	if err := d.stack.SetSpoofing(nicID, true); err != nil {
		return fmt.Errorf("spoofing NIC: %v", err)
	}
	for _, a := range addrs {
		proto := ipv4.ProtocolNumber
		if a.Is6() {
			proto = ipv6.ProtocolNumber
		}
		pa := tcpip.ProtocolAddress{Protocol: proto, AddressWithPrefix: tcpip.AddrFromSlice(a.AsSlice()).WithPrefix()}
		if err := d.stack.AddProtocolAddress(nicID, pa, stack.AddressProperties{}); err != nil {
			return fmt.Errorf("adding address %v: %v", a, err)
		}
	}
	d.stack.SetRouteTable([]tcpip.Route{
		{Destination: header.IPv4EmptySubnet, NIC: nicID},
		{Destination: header.IPv6EmptySubnet, NIC: nicID},
	})
	return nil
}

// tuneTCP enables SACK and larger buffers with receive-buffer
// auto-tuning: an exit node moves bulk data.
func tuneTCP(s *stack.Stack) error {
	sack := tcpip.TCPSACKEnabled(true)
	mod := tcpip.TCPModerateReceiveBufferOption(true)
	rcv := tcpip.TCPReceiveBufferSizeRangeOption{Min: 4 << 10, Default: 1 << 20, Max: 8 << 20}
	snd := tcpip.TCPSendBufferSizeRangeOption{Min: 4 << 10, Default: 1 << 20, Max: 8 << 20}
	for _, opt := range []tcpip.SettableTransportProtocolOption{&sack, &mod, &rcv, &snd} {
		if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, opt); err != nil {
			return fmt.Errorf("tcp option %T: %v", opt, err)
		}
	}
	return nil
}

// Stack is the gVisor stack, for attaching transport handlers.
func (d *Device) Stack() *stack.Stack { return d.stack }

// Name implements tun.Device.
func (d *Device) Name() (string, error) { return "netstack", nil }

// File implements tun.Device; there is none.
func (d *Device) File() *os.File { return nil }

// Events implements tun.Device.
func (d *Device) Events() <-chan tun.Event { return d.events }

// MTU implements tun.Device.
func (d *Device) MTU() (int, error) { return d.mtu, nil }

// BatchSize implements tun.Device: how many packets Read may return at once.
func (d *Device) BatchSize() int { return maxBatch }

// Read implements tun.Device: it blocks for the stack's next packets.
func (d *Device) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	for {
		n, ok := d.ep.ReadBatch(bufs, sizes, offset)
		if !ok {
			return 0, os.ErrClosed
		}
		if n > 0 {
			return n, nil
		}
	}
}

// Write implements tun.Device: each decrypted batch enters the stack
// through generic receive offload, which merges a flow's consecutive TCP
// segments into one before TCP sees them (an upload costs the stack one
// segment per batch, not one per packet). Checksums are not verified again:
// WireGuard authenticated every packet.
func (d *Device) Write(bufs [][]byte, offset int) (int, error) {
	disp := d.ep.dispatcher()
	if disp == nil {
		return len(bufs), nil
	}
	g, _ := d.gros.Get().(*gro.GRO)
	if g == nil {
		g = new(gro.GRO)
		g.Init(true)
	}
	g.Dispatcher = disp
	defer func() { g.Dispatcher = nil; d.gros.Put(g) }()
	for _, b := range bufs {
		pkt := b[offset:]
		if len(pkt) == 0 || d.strayEcho(pkt) {
			continue
		}
		var proto tcpip.NetworkProtocolNumber
		switch pkt[0] >> 4 {
		case 4:
			proto = header.IPv4ProtocolNumber
		case 6:
			proto = header.IPv6ProtocolNumber
		default:
			g.Flush()
			return 0, syscall.EAFNOSUPPORT
		}
		pb := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(pkt)})
		pb.NetworkProtocolNumber = proto
		pb.RXChecksumValidated = true
		g.Enqueue(pb)
		pb.DecRef()
	}
	g.Flush()
	return len(bufs), nil
}

// strayEcho reports an ICMP echo request to an address the stack does not
// own. The NIC is promiscuous, so gVisor would answer echo for any
// destination and tell the client that an unreachable host is up; only the
// gateways answer, and other pings go unanswered, as behind a firewall.
func (d *Device) strayEcho(pkt []byte) bool {
	var dst netip.Addr
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < 20 {
			return false
		}
		ihl := int(pkt[0]&0x0f) * 4
		fragOff := int(pkt[6]&0x1f)<<8 | int(pkt[7])
		if ihl < 20 || len(pkt) <= ihl || pkt[9] != 1 || fragOff != 0 || pkt[ihl] != 8 {
			return false
		}
		dst = netip.AddrFrom4([4]byte(pkt[16:20]))
	case 6:
		// Echo behind extension headers is rare enough to let through.
		if len(pkt) <= 40 || pkt[6] != 58 || pkt[40] != 128 {
			return false
		}
		dst = netip.AddrFrom16([16]byte(pkt[24:40]))
	default:
		return false
	}
	for _, a := range d.addrs {
		if a == dst {
			return false
		}
	}
	return true
}

// Close implements tun.Device; it is idempotent.
func (d *Device) Close() error {
	d.closeOnce.Do(func() {
		d.ep.Close()
		d.stack.RemoveNIC(nicID)
		d.stack.Close()
		d.stack.Wait()
		close(d.events)
	})
	return nil
}
