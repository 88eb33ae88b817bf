package wireguard

import (
	"context"
	"errors"
	"net"
	"net/netip"

	"golang.org/x/net/dns/dnsmessage"
)

// dnsTTL is the TTL of the answers the gateway gives.
const dnsTTL = 60

// maxDNSResponse keeps answers within a datagram clients accept without EDNS.
const maxDNSResponse = 512

// answerDNS resolves one DNS query with r and returns the response; ok is
// false for what is not a query at all (it gets no answer). A and AAAA are
// resolved; other types get an empty NOERROR answer.
func answerDNS(ctx context.Context, r *net.Resolver, query []byte) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil || h.Response {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return reply(h, nil, dnsmessage.RCodeFormatError, nil)
	}
	if h.OpCode != 0 {
		return reply(h, &q, dnsmessage.RCodeNotImplemented, nil)
	}
	var network string
	switch q.Type {
	case dnsmessage.TypeA:
		network = "ip4"
	case dnsmessage.TypeAAAA:
		network = "ip6"
	default:
		return reply(h, &q, dnsmessage.RCodeSuccess, nil)
	}
	addrs, err := r.LookupNetIP(ctx, network, q.Name.String())
	if err != nil {
		var de *net.DNSError
		if errors.As(err, &de) && de.IsNotFound {
			return reply(h, &q, dnsmessage.RCodeNameError, nil)
		}
		return reply(h, &q, dnsmessage.RCodeServerFailure, nil)
	}
	return reply(h, &q, dnsmessage.RCodeSuccess, addrs)
}

// reply builds a response to h with question q (if any) and answers.
func reply(h dnsmessage.Header, q *dnsmessage.Question, rc dnsmessage.RCode, addrs []netip.Addr) ([]byte, bool) {
	b := dnsmessage.NewBuilder(make([]byte, 0, maxDNSResponse), dnsmessage.Header{
		ID: h.ID, Response: true, OpCode: h.OpCode, RecursionDesired: h.RecursionDesired,
		RecursionAvailable: true, RCode: rc,
	})
	b.EnableCompression()
	if q == nil {
		return finish(b)
	}
	if b.StartQuestions() != nil || b.Question(*q) != nil || b.StartAnswers() != nil {
		return nil, false
	}
	rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: dnsTTL}
	size := 12 + len(q.Name.String()) + 6
	for _, a := range addrs {
		a = a.Unmap()
		var err error
		switch {
		case a.Is4() && q.Type == dnsmessage.TypeA:
			size += 16
			if size > maxDNSResponse {
				return finish(b)
			}
			err = b.AResource(rh, dnsmessage.AResource{A: a.As4()})
		case a.Is6() && q.Type == dnsmessage.TypeAAAA:
			size += 28
			if size > maxDNSResponse {
				return finish(b)
			}
			err = b.AAAAResource(rh, dnsmessage.AAAAResource{AAAA: a.As16()})
		}
		if err != nil {
			return nil, false
		}
	}
	return finish(b)
}

func finish(b dnsmessage.Builder) ([]byte, bool) {
	msg, err := b.Finish()
	return msg, err == nil
}

// dnsInFlight bounds the queries the gateway resolves at once in tun mode.
const dnsInFlight = 64

// serveDNSPackets answers the peers' queries to the gateway in tun mode,
// where the kernel delivers them to a socket on the gateway's address; it
// returns when pc is closed.
func (s *Server) serveDNSPackets(pc net.PacketConn) {
	sem := make(chan struct{}, dnsInFlight)
	for {
		buf := make([]byte, 1500)
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		ua, _ := from.(*net.UDPAddr)
		if ua == nil || s.lookup(ua.AddrPort().Addr().Unmap()) == nil {
			s.refuse(refusedUnknown)
			continue
		}
		select {
		case sem <- struct{}{}:
		default:
			continue // overloaded: the client retries
		}
		s.m.dnsQueries.Inc()
		go func() {
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(s.ctx, DefaultDNSTimeout)
			defer cancel()
			if resp, ok := answerDNS(ctx, s.o.Resolver, buf[:n]); ok {
				pc.WriteTo(resp, from)
			}
		}()
	}
}
