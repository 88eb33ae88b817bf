package mtproto

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/usipipo/usipipo/proxy/mtproto/wire"
)

// Defaults applied by New to zero Options fields.
const (
	DefaultSkew              = 60 * time.Second
	DefaultReplayMax         = 1 << 18
	DefaultMaxConns          = 10000
	DefaultHandshakeTimeout  = 10 * time.Second
	DefaultIdleTimeout       = 5 * time.Minute
	DefaultFailuresPerMinute = 30
	DefaultSourceWindow      = 24 * time.Hour
	enforceEvery             = 500 * time.Millisecond
	// peekTimeout bounds the wait for a non-TLS client's 64-byte init: a
	// browser or scanner that sends less is fronted after it.
	peekTimeout = 3 * time.Second
)

// DialFunc opens a flow for a credential: (*egress.Dialer).DialFor.
type DialFunc func(ctx context.Context, cred, network, addr string) (net.Conn, error)

// Options configure a Server.
type Options struct {
	Listener net.Listener // already bound (the node's listener registry)
	Dial     DialFunc     // towards the DCs; required
	// FrontAddr is the cloak domain's real TLS server (host:port): every
	// connection that is not a valid handshake is spliced to it unchanged.
	// Empty: such connections are closed.
	FrontAddr string
	// FrontDial dials FrontAddr; nil means a net.Dialer. It is not the
	// egress dialer: the cover site is usually the node's own listener.
	FrontDial func(ctx context.Context, network, addr string) (net.Conn, error)
	// CloakDomain is the SNI FakeTLS clients must send; "" accepts any.
	CloakDomain string
	// DCs maps DC indexes to addresses; nil means DefaultDCs().
	DCs map[int]string
	// Skew is the clock skew accepted in FakeTLS hellos; the anti-replay
	// window is twice it, which covers every replay the skew check lets by.
	Skew      time.Duration
	ReplayMax int // digests per anti-replay generation
	// AllowPlain accepts obfuscated2 without the dd (padded intermediate)
	// tag, which DPI can recognise by packet sizes. DisableDD accepts only
	// FakeTLS.
	AllowPlain, DisableDD bool
	MaxConns              int // concurrent client connections, fronted ones included
	HandshakeTimeout      time.Duration
	IdleTimeout           time.Duration
	FailuresPerMinute     int           // failed handshakes per source before searching stops
	SourceWindow          time.Duration // distinct client addresses are counted over it
	// FastMode forwards DC→client bytes without decrypting and
	// re-encrypting them (see fastmode.go for when that is valid and what
	// it gives up); client→DC bytes are always re-encrypted.
	FastMode bool
	CertSize int          // bytes of fake certificate; 0: random 2–4 KiB
	Rand     io.Reader    // nil: crypto/rand
	Log      *slog.Logger // nil: discard
	Metrics  *metrics.Set // nil: a private set
}

func (o *Options) setDefaults() error {
	if o.Listener == nil || o.Dial == nil {
		return errors.New("mtproto: Listener and Dial are required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	defInt := func(d *int, v int) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Skew, DefaultSkew)
	def(&o.HandshakeTimeout, DefaultHandshakeTimeout)
	def(&o.IdleTimeout, DefaultIdleTimeout)
	def(&o.SourceWindow, DefaultSourceWindow)
	defInt(&o.ReplayMax, DefaultReplayMax)
	defInt(&o.MaxConns, DefaultMaxConns)
	defInt(&o.FailuresPerMinute, DefaultFailuresPerMinute)
	if o.DCs == nil {
		o.DCs = DefaultDCs()
	}
	if o.FrontDial == nil {
		d := &net.Dialer{Timeout: 5 * time.Second}
		o.FrontDial = d.DialContext
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = metrics.NewSet()
	}
	return nil
}

// Server is the MTProto proxy plane.
type Server struct {
	opts  Options
	log   *slog.Logger
	epoch string

	secrets atomic.Pointer[table]
	replay  *replayCache
	fails   *failLimiter
	recent  *matchCache
	pool    sync.Pool // *[]byte of wire.RecordHeaderLen+wire.MaxRecordPayload
	slots   chan struct{}
	m       serverMetrics

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	full      fullLog
}

// New starts serving opts.Listener.
func New(opts Options) (*Server, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	var e [8]byte
	if _, err := io.ReadFull(opts.Rand, e[:]); err != nil {
		return nil, fmt.Errorf("mtproto: epoch: %w", err)
	}
	now := time.Now()
	s := &Server{
		opts: opts, log: opts.Log, epoch: hex.EncodeToString(e[:]),
		replay: newReplayCache(2*opts.Skew, opts.ReplayMax, now),
		fails:  newFailLimiter(opts.FailuresPerMinute, 1<<16),
		recent: newMatchCache(1 << 16),
		slots:  make(chan struct{}, opts.MaxConns),
		m:      newServerMetrics(opts.Metrics),
	}
	s.pool.New = func() any { b := make([]byte, wire.RecordHeaderLen+wire.MaxRecordPayload); return &b }
	s.secrets.Store(&table{byID: map[string]*secret{}})
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(2)
	go s.serve()
	go s.enforceLoop()
	return s, nil
}

// Close stops accepting, closes every connection and waits for them.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		s.opts.Listener.Close()
		for _, sec := range s.secrets.Load().list {
			sec.closeAll(true)
		}
	})
	s.wg.Wait()
	return nil
}

// Addr is the address the proxy listens on.
func (s *Server) Addr() net.Addr { return s.opts.Listener.Addr() }

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.opts.Listener.Accept()
		if err != nil {
			// A closed listener is a normal stop, or an upgrade handing the
			// socket to the next process.
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.log.Error("mtproto_accept", "error", err)
			return
		}
		select {
		case s.slots <- struct{}{}:
		default:
			s.m.full.Inc()
			s.full.note(s.log, s.opts.MaxConns)
			c.Close()
			continue
		}
		s.wg.Add(1)
		go s.handle(c)
	}
}

func (s *Server) enforceLoop() {
	defer s.wg.Done()
	t := time.NewTicker(enforceEvery)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case now := <-t.C:
			s.enforce(now)
		}
	}
}

// handle serves one client connection from its first byte to its end.
func (s *Server) handle(c net.Conn) {
	defer func() {
		c.Close()
		<-s.slots
		s.wg.Done()
	}()
	// Close must reach connections still in their handshake too.
	stop := context.AfterFunc(s.ctx, func() { c.Close() })
	defer stop()
	src := remoteAddr(c)
	c.SetDeadline(time.Now().Add(s.opts.HandshakeTimeout))
	var first [wire.InitLen]byte
	if n, err := io.ReadFull(c, first[:3]); err != nil {
		if n > 0 {
			s.front(c, first[:n], "short")
		}
		return
	}
	// A TLS record header, 16 03 0x. An obfuscated2 init starts so by
	// chance once in ~4 million (clients exclude only 16 03 01 02): that
	// client fails once and retries with a fresh init.
	if first[0] == wire.RecordHandshake && first[1] == 3 && first[2] <= 3 {
		s.handleTLS(c, src, first[:3])
		return
	}
	s.handleObfs2(c, src, &first)
}

func remoteAddr(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// fullLog logs the connection bound being hit, at most every 10 seconds.
type fullLog struct {
	mu      sync.Mutex
	last    time.Time
	dropped int
}

func (f *fullLog) note(log *slog.Logger, limit int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dropped++
	if now := time.Now(); now.Sub(f.last) >= 10*time.Second {
		log.Warn("mtproto_conn_limit", "max_conns", limit, "dropped", f.dropped)
		f.last, f.dropped = now, 0
	}
}
