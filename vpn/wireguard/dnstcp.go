package wireguard

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// dnsTCPIdle is how long a DNS-over-TCP connection waits for a query.
const dnsTCPIdle = 10 * time.Second

// isDNS reports the tunnel DNS address (the gateway, port 53).
func (s *Server) isDNS(dst netip.AddrPort) bool {
	return dst.Port() == 53 && (dst.Addr() == s.gw4 || dst.Addr() == s.gw6)
}

// handleDNSTCP answers DNS over TCP on the gateway (RFC 7766): resolvers
// retry there when a UDP answer is truncated, and some use only TCP.
func (s *Server) handleDNSTCP(r *tcp.ForwarderRequest, src netip.Addr) {
	if s.lookup(src) == nil {
		s.refuse(refusedUnknown)
		r.Complete(true)
		return
	}
	if !s.track() {
		r.Complete(true)
		return
	}
	defer s.untrack()
	var wq waiter.Queue
	ep, terr := r.CreateEndpoint(&wq)
	if terr != nil {
		r.Complete(true)
		return
	}
	r.Complete(false)
	conn := gonet.NewTCPConn(&wq, ep)
	defer conn.Close()
	stop := context.AfterFunc(s.ctx, func() { conn.Close() })
	defer stop()
	s.serveDNSStream(conn)
}

// serveDNSStream answers length-prefixed queries in order until the
// client closes, stays idle, or sends what is not a query.
func (s *Server) serveDNSStream(conn net.Conn) {
	var hdr [2]byte
	buf := make([]byte, 65535)
	for {
		if conn.SetReadDeadline(time.Now().Add(dnsTCPIdle)) != nil {
			return
		}
		if _, err := io.ReadFull(conn, hdr[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(hdr[:]))
		if _, err := io.ReadFull(conn, buf[:n]); err != nil {
			return
		}
		s.m.dnsQueries.Inc()
		ctx, cancel := context.WithTimeout(s.ctx, DefaultDNSTimeout)
		resp, ok := answerDNS(ctx, s.o.Resolver, buf[:n])
		cancel()
		if !ok {
			return
		}
		out := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(resp)), uint16(len(resp)))
		if conn.SetWriteDeadline(time.Now().Add(dnsTCPIdle)) != nil {
			return
		}
		if _, err := conn.Write(append(out, resp...)); err != nil {
			return
		}
	}
}
