package wireguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// maxDatagram is the largest datagram a UDP flow relays.
const maxDatagram = 65535

// handleUDP runs on the stack's receive path: it must not block, so the
// relay (and its dial) runs on a goroutine of its own.
func (s *Server) handleUDP(r *udp.ForwarderRequest) {
	src, dst := flowID(r.ID())
	if s.isDNS(dst) {
		s.handleDNS(r, src.Addr())
		return
	}
	l, f, ctx, ok := s.admit(src.Addr(), dst)
	if !ok {
		return
	}
	var wq waiter.Queue
	ep, terr := r.CreateEndpoint(&wq)
	if terr != nil {
		s.finish(l, f)
		return
	}
	tun := gonet.NewUDPConn(&wq, ep)
	go func() {
		defer s.finish(l, f)
		defer tun.Close()
		host, err := s.o.Egress.DialFor(ctx, l.id, "udp", s.o.dialDst(dst).String())
		if err != nil {
			s.dialFailed(err)
			return
		}
		defer host.Close()
		s.m.udpFlows.Inc()
		relayUDP(ctx, tun, host, l, s.o.UDPIdle)
	}()
}

// relayUDP moves datagrams both ways until ctx ends or neither side has
// sent anything for idle.
func relayUDP(ctx context.Context, tun, host net.Conn, l *live, idle time.Duration) {
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	stop := context.AfterFunc(ctx, func() { host.Close(); tun.Close() })
	defer stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		datagrams(host, tun, l, l.up, &last, idle)
		host.Close()
	}()
	datagrams(tun, host, l, l.down, &last, idle)
	tun.Close()
	host.Close()
	<-done
}

// datagrams copies src to dst, dropping datagrams over lim (a policer: UDP
// has no backpressure), until an error or a shared idle period.
func datagrams(dst, src net.Conn, l *live, lim *rate.Limiter, last *atomic.Int64, idle time.Duration) {
	buf := make([]byte, maxDatagram)
	for {
		if err := src.SetReadDeadline(time.Unix(0, last.Load()).Add(idle)); err != nil {
			return
		}
		n, err := src.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && time.Since(time.Unix(0, last.Load())) < idle {
				continue // the other direction was active
			}
			return
		}
		last.Store(time.Now().UnixNano())
		l.spend(n)
		if l.limited.Load() && !lim.AllowN(time.Now(), n) {
			continue
		}
		if _, err := dst.Write(buf[:n]); err != nil && !isTransient(err) {
			return
		}
	}
}

// isTransient reports errors a UDP flow survives, such as the ICMP
// unreachable a connected socket reports on its next write.
func isTransient(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && !errors.Is(err, net.ErrClosed) && !oe.Timeout()
}

// handleDNS answers the peers' queries to the gateway with the host's
// resolver. Each query's source port is its own endpoint; it lingers for
// dnsLinger in case more queries follow.
func (s *Server) handleDNS(r *udp.ForwarderRequest, src netip.Addr) {
	if s.lookup(src) == nil {
		s.refuse(refusedUnknown)
		return
	}
	if !s.track() {
		return
	}
	var wq waiter.Queue
	ep, terr := r.CreateEndpoint(&wq)
	if terr != nil {
		s.untrack()
		return
	}
	conn := gonet.NewUDPConn(&wq, ep)
	go func() {
		defer s.untrack()
		defer conn.Close()
		stop := context.AfterFunc(s.ctx, func() { conn.Close() })
		defer stop()
		s.serveDNS(conn)
	}()
}

// dnsLinger is how long a DNS endpoint waits for another query.
const dnsLinger = 5 * time.Second

func (s *Server) serveDNS(conn net.Conn) {
	buf := make([]byte, 1500)
	for {
		if err := conn.SetReadDeadline(time.Now().Add(dnsLinger)); err != nil {
			return
		}
		n, err := conn.Read(buf)
		if err != nil {
			return
		}
		s.m.dnsQueries.Inc()
		ctx, cancel := context.WithTimeout(s.ctx, DefaultDNSTimeout)
		resp, ok := answerDNS(ctx, s.o.Resolver, buf[:n])
		cancel()
		if ok {
			if _, err := conn.Write(resp); err != nil {
				return
			}
		}
	}
}
