package outline

import (
	"context"
	"crypto/cipher"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

const (
	maxUDPPacket   = 65535
	maxSessionDest = 1024 // destinations a session remembers as already checked
	resolveTimeout = 2 * time.Second
	maxResolving   = 8 // name lookups in flight per session
)

// udpRelay is the UDP side: one NAT session per client address, each with
// its own outbound socket, so replies find their client.
type udpRelay struct {
	s        *Server
	pc       net.PacketConn
	mu       sync.Mutex
	sessions map[netip.AddrPort]*udpSession
}

func newUDPRelay(s *Server, pc net.PacketConn) *udpRelay {
	return &udpRelay{s: s, pc: pc, sessions: map[netip.AddrPort]*udpSession{}}
}

func (u *udpRelay) run() {
	defer u.closeAll()
	pkt := make([]byte, maxUDPPacket)
	scratch := make([]byte, maxUDPPacket)
	for {
		n, addr, err := u.pc.ReadFrom(pkt)
		if err != nil {
			if u.s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		ua, ok := addr.(*net.UDPAddr)
		if !ok {
			continue
		}
		client := netip.AddrPortFrom(ua.AddrPort().Addr().Unmap(), ua.AddrPort().Port())
		u.s.m.udpIn.Inc()
		if !u.handle(client, pkt[:n], scratch) {
			u.s.m.udpDropped.Inc()
		}
	}
}

// openInto opens pkt under e into dst without touching pkt, so a failed
// trial leaves it intact for the next key.
func (s *Server) openInto(e *keyEntry, dst, pkt []byte) ([]byte, bool) {
	ss := e.c.SaltSize()
	if len(pkt) < ss+tagSize {
		return nil, false
	}
	aead, err := s.aead(e.c, pkt[:ss])
	if err != nil {
		return nil, false
	}
	p, err := aead.Open(dst[:0], zeroNonce[:], pkt[ss:], nil)
	return p, err == nil
}

// handle relays one client packet and reports whether it was sent on.
func (u *udpRelay) handle(client netip.AddrPort, pkt, scratch []byte) bool {
	s := u.s
	u.mu.Lock()
	sess := u.sessions[client]
	u.mu.Unlock()
	var plain []byte
	if sess != nil {
		var ok bool
		if plain, ok = s.openInto(sess.e, scratch, pkt); !ok {
			return false
		}
		if !u.fresh(sess.e, pkt) {
			return false
		}
	} else {
		now := s.o.Now()
		if s.fails.blocked(client.Addr(), now) {
			s.m.rateLimited.Inc()
			return false
		}
		set := s.keys.Load()
		m, trials, ok := set.search(s.last.get(client.Addr()), udpTrials(pkt, scratch))
		plain = m.plain
		s.m.trials.Add(trials)
		if !ok {
			s.fails.failed(client.Addr(), now)
			s.m.authFailed.Inc()
			return false
		}
		if !u.fresh(m.e, pkt) {
			return false
		}
		s.last.put(client.Addr(), m.e.st.id)
		if sess = u.open(client, m.e); sess == nil {
			s.m.refused.Inc()
			return false
		}
	}
	return sess.send(plain)
}

// fresh records the salt of an authenticated datagram and reports whether
// it was new. Only authenticated salts are recorded, so junk cannot flush
// the filter; a replay does not count against the source's failure budget,
// since a UDP source address can be forged to lock a real client out.
func (u *udpRelay) fresh(e *keyEntry, pkt []byte) bool {
	if u.s.udpSalts.add(pkt[:e.c.SaltSize()]) {
		return true
	}
	u.s.m.udpReplays.Inc()
	return false
}

// open starts a NAT session for client under key e.
func (u *udpRelay) open(client netip.AddrPort, e *keyEntry) *udpSession {
	if e.st.stopped(u.s.o.Now()) {
		return nil
	}
	out, err := net.ListenUDP("udp", nil)
	if err != nil {
		u.s.log.Warn("outline_udp_socket_failed", "error", err.Error())
		return nil
	}
	sess := &udpSession{r: u, client: client, e: e, out: out, dests: map[netip.AddrPort]struct{}{}}
	sess.touch()
	if !e.st.register(sess, client.Addr()) {
		out.Close()
		return nil
	}
	u.mu.Lock()
	if u.s.ctx.Err() != nil {
		u.mu.Unlock()
		sess.Close()
		return nil
	}
	u.sessions[client] = sess
	u.mu.Unlock()
	u.s.m.udpSessions.Inc()
	u.s.wg.Go(sess.readReplies)
	return sess
}

func (u *udpRelay) closeAll() {
	u.mu.Lock()
	all := make([]*udpSession, 0, len(u.sessions))
	for _, s := range u.sessions {
		all = append(all, s)
	}
	u.mu.Unlock()
	for _, s := range all {
		s.Close()
	}
}

// udpSession is one client's NAT mapping.
type udpSession struct {
	r      *udpRelay
	client netip.AddrPort
	e      *keyEntry
	out    *net.UDPConn
	last   atomic.Int64 // unix nanoseconds of the last client packet
	once   sync.Once
	mu     sync.Mutex
	dests  map[netip.AddrPort]struct{} // destinations the egress policy already passed
	// resolving counts name lookups in flight.
	resolving atomic.Int32
}

func (u *udpSession) touch() { u.last.Store(time.Now().UnixNano()) }

// Close ends the session; safe to call more than once.
func (u *udpSession) Close() error {
	u.once.Do(func() {
		u.out.Close()
		u.r.mu.Lock()
		if u.r.sessions[u.client] == u {
			delete(u.r.sessions, u.client)
		}
		u.r.mu.Unlock()
		u.e.st.unregister(u)
	})
	return nil
}

// send relays one decrypted client packet (address header, then data).
func (u *udpSession) send(plain []byte) bool {
	s := u.r.s
	st := u.e.st
	if st.stopped(s.o.Now()) {
		u.Close()
		return false
	}
	a, n, err := ParseAddr(plain)
	if err != nil {
		return false
	}
	if a.Host != "" {
		// A lookup must not stall every client's packets: resolve aside,
		// a few at a time per session.
		if u.resolving.Add(1) > maxResolving {
			u.resolving.Add(-1)
			return false
		}
		data := append([]byte(nil), plain[n:]...)
		s.wg.Go(func() {
			defer u.resolving.Add(-1)
			if dest, ok := u.resolve(a); ok {
				u.forward(dest, data)
			}
		})
		return true
	}
	return u.forward(netip.AddrPortFrom(a.IP.Addr().Unmap(), a.IP.Port()), plain[n:])
}

// forward sends data to dest if the egress policy and the key's speed allow.
func (u *udpSession) forward(dest netip.AddrPort, data []byte) bool {
	s := u.r.s
	st := u.e.st
	if !u.allowed(dest) {
		return false
	}
	if !pass(st, true, len(data)) {
		return false
	}
	u.touch()
	st.count(true, len(data), s.o.Now())
	s.m.rxBytes.Add(len(data))
	_, err := u.out.WriteToUDPAddrPort(data, dest)
	return err == nil
}

// resolve looks up a target name; the egress check then judges the
// resolved address.
func (u *udpSession) resolve(a Addr) (netip.AddrPort, bool) {
	ctx, cancel := context.WithTimeout(u.r.s.ctx, resolveTimeout)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", a.Host)
	if err != nil || len(ips) == 0 {
		return netip.AddrPort{}, false
	}
	// IPv4 first: the node's IPv6 egress is the rarer one to work.
	ip := ips[0]
	for _, x := range ips {
		if x.Unmap().Is4() {
			ip = x
			break
		}
	}
	return netip.AddrPortFrom(ip.Unmap(), a.Port), true
}

// allowed asks the egress policy once per new destination of the session.
func (u *udpSession) allowed(dest netip.AddrPort) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, ok := u.dests[dest]; ok {
		return true
	}
	if err := u.r.s.o.Egress.CheckFor(u.e.st.id, dest); err != nil {
		return false
	}
	if len(u.dests) >= maxSessionDest {
		clear(u.dests)
	}
	u.dests[dest] = struct{}{}
	return true
}

// pass applies the key's speed limit to a datagram: UDP is dropped, not queued.
func pass(st *keyState, up bool, n int) bool {
	l := st.down
	if up {
		l = st.up
	}
	return l.AllowN(time.Now(), n)
}

// readReplies relays datagrams from targets back to the client until the
// session has been idle for UDPTimeout or is closed.
func (u *udpSession) readReplies() {
	defer u.Close()
	s := u.r.s
	buf := make([]byte, maxUDPPacket)
	plain := make([]byte, 0, maxUDPPacket)
	sealed := make([]byte, 0, maxUDPPacket+maxSaltSize+tagSize)
	for {
		u.out.SetReadDeadline(time.Unix(0, u.last.Load()).Add(s.o.UDPTimeout))
		n, from, err := u.out.ReadFromUDPAddrPort(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && time.Since(time.Unix(0, u.last.Load())) < s.o.UDPTimeout {
				continue
			}
			return
		}
		st := u.e.st
		if st.stopped(s.o.Now()) {
			return
		}
		if !pass(st, false, n) {
			continue
		}
		plain = AppendAddr(plain[:0], Addr{IP: netip.AddrPortFrom(from.Addr().Unmap(), from.Port())})
		plain = append(plain, buf[:n]...)
		out, err := sealPacket(func(salt []byte) (cipher.AEAD, error) {
			s.udpSalts.add(salt) // a reflected reply must not pass as a client datagram
			return s.aead(u.e.c, salt)
		}, u.e.c.SaltSize(), sealed[:0], plain)
		if err != nil {
			continue
		}
		st.count(false, n, s.o.Now())
		s.m.txBytes.Add(n)
		u.r.pc.WriteTo(out, net.UDPAddrFromAddrPort(u.client))
	}
}
