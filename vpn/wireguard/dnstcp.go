package wireguard

import (
	"context"
	"encoding/binary"
	"errors"
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

// handleDNSTCP answers DNS over TCP on the gateway (RFC 7766) in netstack
// mode: resolvers retry there when a UDP answer is truncated, and some use
// only TCP.
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

// serveDNSListener answers DNS over TCP on a gateway address in tun mode,
// where the kernel hands the peers' connections to ln; it returns when ln
// is closed. Only the peers' addresses are served (the firewall admits
// nothing else from the tunnel, but the socket is on the host), and at
// most dnsInFlight connections at once.
func (s *Server) serveDNSListener(ln net.Listener) {
	sem := make(chan struct{}, dnsInFlight)
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// A transient accept failure (out of descriptors): go on.
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		ta, _ := conn.RemoteAddr().(*net.TCPAddr)
		if ta == nil || s.lookup(ta.AddrPort().Addr().Unmap()) == nil {
			s.refuse(refusedUnknown)
			conn.Close()
			continue
		}
		select {
		case sem <- struct{}{}:
		default:
			conn.Close() // overloaded: the client retries
			continue
		}
		if !s.track() {
			conn.Close()
			return
		}
		go func() {
			defer func() { <-sem }()
			defer s.untrack()
			defer conn.Close()
			stop := context.AfterFunc(s.ctx, func() { conn.Close() })
			defer stop()
			s.serveDNSStream(conn)
		}()
	}
}
