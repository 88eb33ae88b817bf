package mtproto

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/usipipo/usipipo/proxy/mtproto/wire"
)

// handleTLS serves a connection that starts like TLS: a FakeTLS client with
// one of our secrets, or anything else, which goes to the fronting server.
func (s *Server) handleTLS(c net.Conn, src netip.Addr, first []byte) {
	hello, err := wire.ReadClientHello(io.MultiReader(bytes.NewReader(first), c))
	if err != nil {
		if errors.Is(err, wire.ErrNotHello) {
			s.front(c, hello.Raw, "not_hello")
		}
		return
	}
	if s.opts.CloakDomain != "" && hello.SNI != s.opts.CloakDomain {
		s.front(c, hello.Raw, "sni") // a visitor of another site: not a failure
		return
	}
	sec, ts := s.findTLS(hello, src)
	if sec == nil {
		s.failed(c, src, hello.Raw, "no_secret")
		return
	}
	now := time.Now()
	if d := now.Sub(ts); d > s.opts.Skew || d < -s.opts.Skew {
		s.failed(c, src, hello.Raw, "skew")
		return
	}
	var digest [16]byte
	copy(digest[:], hello.Random[:16])
	if s.replay.seen(digest, now) {
		s.failed(c, src, hello.Raw, "replay")
		return
	}
	resp, err := wire.ServerHello(s.opts.Rand, hello, sec.key, s.certSize())
	if err != nil {
		s.log.Error("mtproto_server_hello", "error", err)
		return
	}
	if _, err := c.Write(resp); err != nil {
		return
	}
	rr := wire.NewRecordReader(c)
	var raw [wire.InitLen]byte
	if _, err := io.ReadFull(rr, raw[:]); err != nil {
		s.m.handshake("tls_init_short").Inc()
		return
	}
	init, err := wire.ParseInit(&raw, sec.key)
	if err != nil {
		s.m.handshake("tls_bad_init").Inc()
		return
	}
	s.m.handshake("ok_tls").Inc()
	s.relay(c, rr, true, src, sec, init, &raw)
}

// findTLS finds the secret a hello was signed with: the client address's
// last match first, then, unless the address failed too often, every secret.
func (s *Server) findTLS(h *wire.ClientHello, src netip.Addr) (*secret, time.Time) {
	t := s.secrets.Load()
	if sec := s.recent.get(src); sec != nil && t.byID[sec.id] == sec {
		if ts, ok := h.Verify(sec.key); ok {
			return sec, ts
		}
	}
	if !s.fails.allow(src, time.Now()) {
		s.m.handshake("rate_limited").Inc()
		return nil, time.Time{}
	}
	for _, sec := range t.list {
		if ts, ok := h.Verify(sec.key); ok {
			s.recent.put(src, sec)
			return sec, ts
		}
	}
	return nil, time.Time{}
}

// handleObfs2 serves a connection that does not start like TLS: an
// obfuscated2 (dd) client, or anything else, which goes to the fronting
// server.
func (s *Server) handleObfs2(c net.Conn, src netip.Addr, raw *[wire.InitLen]byte) {
	if s.opts.DisableDD {
		s.front(c, raw[:3], "not_tls")
		return
	}
	c.SetReadDeadline(time.Now().Add(min(peekTimeout, s.opts.HandshakeTimeout)))
	n, err := io.ReadFull(c, raw[3:])
	if err != nil {
		if n > 0 || !errors.Is(err, io.EOF) {
			s.front(c, raw[:3+n], "short")
		}
		return
	}
	c.SetReadDeadline(time.Now().Add(s.opts.HandshakeTimeout))
	sec := s.findObfs2(raw, src)
	if sec == nil {
		s.failed(c, src, raw[:], "no_secret")
		return
	}
	init, err := wire.ParseInit(raw, sec.key)
	if err != nil || init.Tag != wire.TagPaddedIntermediate && !s.opts.AllowPlain {
		s.failed(c, src, raw[:], "plain")
		return
	}
	var digest [16]byte
	copy(digest[:], raw[8:24])
	if s.replay.seen(digest, time.Now()) {
		s.failed(c, src, raw[:], "replay")
		return
	}
	s.m.handshake("ok_dd").Inc()
	s.relay(c, c, false, src, sec, init, raw)
}

func (s *Server) findObfs2(raw *[wire.InitLen]byte, src netip.Addr) *secret {
	t := s.secrets.Load()
	if sec := s.recent.get(src); sec != nil && t.byID[sec.id] == sec && wire.TagMatches(raw, sec.key) {
		return sec
	}
	if !s.fails.allow(src, time.Now()) {
		s.m.handshake("rate_limited").Inc()
		return nil
	}
	for _, sec := range t.list {
		if wire.TagMatches(raw, sec.key) {
			s.recent.put(src, sec)
			return sec
		}
	}
	return nil
}

// failed counts a failed handshake against its source and fronts the
// connection: to a prober, a wrong secret or a replay looks like the site.
func (s *Server) failed(c net.Conn, src netip.Addr, raw []byte, why string) {
	s.fails.fail(src, time.Now())
	s.front(c, raw, why)
}

func (s *Server) certSize() int {
	if s.opts.CertSize > 0 {
		return s.opts.CertSize
	}
	var b [2]byte
	io.ReadFull(s.opts.Rand, b[:])
	return 2048 + (int(b[0])|int(b[1])<<8)%2048
}

// failLimiter counts failed handshakes per source over one-minute windows.
// Past the limit a source's hellos are checked against its cached secret
// only, never searched: a scanner cannot make us spend the full search.
type failLimiter struct {
	mu     sync.Mutex
	limit  int
	max    int
	window time.Time
	counts map[netip.Addr]int
}

func newFailLimiter(limit, maxTracked int) *failLimiter {
	return &failLimiter{limit: limit, max: maxTracked, counts: map[netip.Addr]int{}}
}

func (f *failLimiter) roll(now time.Time) {
	if now.Sub(f.window) >= time.Minute || len(f.counts) >= f.max {
		clear(f.counts)
		f.window = now
	}
}

func (f *failLimiter) allow(a netip.Addr, now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.roll(now)
	return f.counts[a] < f.limit
}

func (f *failLimiter) fail(a netip.Addr, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.roll(now)
	f.counts[a]++
}

// matchCache remembers the secret each client address last used, so a
// returning client costs one check. Bounded: when full it starts over.
type matchCache struct {
	mu  sync.Mutex
	max int
	m   map[netip.Addr]*secret
}

func newMatchCache(max int) *matchCache { return &matchCache{max: max, m: map[netip.Addr]*secret{}} }

func (c *matchCache) get(a netip.Addr) *secret {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[a]
}

func (c *matchCache) put(a netip.Addr, s *secret) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[a] = s
}

type serverMetrics struct {
	set   *metrics.Set
	full  *metrics.Counter
	conns *metrics.Gauge
}

func newServerMetrics(set *metrics.Set) serverMetrics {
	return serverMetrics{
		set:   set,
		full:  set.GetOrCreateCounter("usipipo_mtproto_conn_limit_total"),
		conns: set.GetOrCreateGauge("usipipo_mtproto_relays", nil),
	}
}

func (m serverMetrics) handshake(result string) *metrics.Counter {
	return m.set.GetOrCreateCounter(`usipipo_mtproto_handshakes_total{result="` + result + `"}`)
}
