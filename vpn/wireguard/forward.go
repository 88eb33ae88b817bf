package wireguard

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"

	"golang.org/x/time/rate"

	"github.com/usipipo/usipipo/app/egress"
)

// tcpMaxInFlight bounds the TCP handshakes the forwarder completes at once.
const tcpMaxInFlight = 1024

// relayBuf is the copy buffer of a relayed stream.
const relayBuf = 64 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, relayBuf); return &b }}

func (s *Server) attachForwarders() {
	st := s.tdev.Stack()
	tf := tcp.NewForwarder(st, 0, tcpMaxInFlight, s.handleTCP)
	st.SetTransportProtocolHandler(tcp.ProtocolNumber, tf.HandlePacket)
	uf := udp.NewForwarder(st, s.handleUDP)
	st.SetTransportProtocolHandler(udp.ProtocolNumber, uf.HandlePacket)
}

func addrOf(a tcpip.Address) netip.Addr {
	ip, _ := netip.AddrFromSlice(a.AsSlice())
	return ip
}

// flowID is a flow's peer source and its destination.
func flowID(id stack.TransportEndpointID) (src, dst netip.AddrPort) {
	return netip.AddrPortFrom(addrOf(id.RemoteAddress), id.RemotePort),
		netip.AddrPortFrom(addrOf(id.LocalAddress), id.LocalPort)
}

// lookup finds the credential holding a tunnel source address.
func (s *Server) lookup(src netip.Addr) *live { return (*s.byAddr.Load())[src] }

// inPools reports tunnel destinations: peers must not reach each other, and
// the gateway serves DNS only.
func (s *Server) inPools(a netip.Addr) bool {
	a = a.Unmap()
	return s.o.PoolV4.Contains(a) || s.o.PoolV6.Contains(a)
}

func (s *Server) refuse(reason string) { s.m.refused[reason].Inc() }

// admit checks a new flow from src to dst and registers it; the returned
// context ends when the flow must close.
func (s *Server) admit(src netip.Addr, dst netip.AddrPort) (*live, *flow, context.Context, bool) {
	l := s.lookup(src)
	if l == nil {
		s.refuse(refusedUnknown)
		return nil, nil, nil, false
	}
	if s.inPools(dst.Addr()) {
		s.refuse(refusedPeers)
		return nil, nil, nil, false
	}
	if !s.track() {
		return nil, nil, nil, false
	}
	ctx, cancel := context.WithCancel(s.ctx)
	f := &flow{cancel: cancel}
	if err := l.open(f); err != nil {
		cancel()
		s.untrack()
		if errors.Is(err, errTooManyConns) {
			s.refuse(refusedConns)
		}
		return nil, nil, nil, false
	}
	return l, f, ctx, true
}

func (s *Server) dialFailed(err error) {
	if errors.Is(err, egress.ErrDenied) || errors.Is(err, egress.ErrRateLimited) {
		s.refuse(refusedEgress)
		return
	}
	s.refuse(refusedDialFail)
}

func (s *Server) handleTCP(r *tcp.ForwarderRequest) {
	src, dst := flowID(r.ID())
	if s.isDNS(dst) {
		s.handleDNSTCP(r, src.Addr())
		return
	}
	l, f, ctx, ok := s.admit(src.Addr(), dst)
	if !ok {
		r.Complete(true)
		return
	}
	defer s.finish(l, f)
	// Dial first: a refused or unreachable destination gets a reset, not a
	// connection that dies at once.
	host, err := s.o.Egress.DialFor(ctx, l.id, "tcp", s.o.dialDst(dst).String())
	if err != nil {
		s.dialFailed(err)
		r.Complete(true)
		return
	}
	// The handshake with the peer may hang (a peer removed meanwhile): the
	// flow's end must close the host side already.
	stopHost := context.AfterFunc(ctx, func() { host.Close() })
	defer stopHost()
	var wq waiter.Queue
	ep, terr := r.CreateEndpoint(&wq)
	if terr != nil {
		host.Close()
		r.Complete(true)
		return
	}
	r.Complete(false)
	s.m.tcpFlows.Inc()
	tun := gonet.NewTCPConn(&wq, ep)
	relayTCP(ctx, tun, host, l)
}

// halfCloser is a stream whose write side closes alone (TCP half-close).
type halfCloser interface {
	net.Conn
	CloseWrite() error
}

// relayTCP copies both ways until both sides have finished, passing each
// FIN on as a half-close; ctx ending closes both at once.
func relayTCP(ctx context.Context, tun *gonet.TCPConn, host net.Conn, l *live) {
	stop := context.AfterFunc(ctx, func() { tun.Close(); host.Close() })
	defer stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pipe(ctx, host, tun, l, l.up)
	}()
	pipe(ctx, tun, host, l, l.down)
	<-done
	tun.Close()
	host.Close()
}

// pipe copies src to dst under lim, then half-closes dst; an error closes
// both for good.
func pipe(ctx context.Context, dst, src net.Conn, l *live, lim *rate.Limiter) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for {
		n, err := src.Read(buf)
		if n > 0 {
			l.spend(n)
			if l.limited.Load() {
				if werr := lim.WaitN(ctx, n); werr != nil {
					dst.Close()
					src.Close()
					return
				}
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				dst.Close()
				src.Close()
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				if hc, ok := dst.(halfCloser); ok {
					hc.CloseWrite()
					return
				}
			}
			dst.Close()
			src.Close()
			return
		}
	}
}

// track counts a flow goroutine for Close to wait on; false once closing.
func (s *Server) track() bool {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if s.fclosed {
		return false
	}
	s.fwg.Add(1)
	return true
}

func (s *Server) untrack() { s.fwg.Done() }

// finish ends an admitted flow.
func (s *Server) finish(l *live, f *flow) {
	f.cancel()
	l.done(f)
	s.untrack()
}

// stopFlows refuses new flows and waits for the open ones, which the
// cancelled server context is closing.
func (s *Server) stopFlows() {
	s.fmu.Lock()
	s.fclosed = true
	s.fmu.Unlock()
	s.fwg.Wait()
}
