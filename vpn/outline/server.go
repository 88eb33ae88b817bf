package outline

import (
	"bufio"
	"context"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/usipipo/usipipo/app/egress"
	"github.com/usipipo/usipipo/app/plane"
	"github.com/usipipo/usipipo/store/model"
)

// Defaults applied by New to zero Options fields.
const (
	DefaultHandshakeTimeout = 60 * time.Second
	DefaultUDPTimeout       = 5 * time.Minute
	DefaultReplayCapacity   = 1 << 20
	DefaultReplayWindow     = 3 * time.Hour
	// UDP carries a salt per datagram, far more salts than TCP's one per
	// connection, so its filter is its own (UDP cannot push TCP's salts
	// out) and remembers for minutes, not hours: a replayed datagram is
	// worth far less to an attacker than a replayed connection.
	DefaultUDPReplayCapacity = 1 << 16
	DefaultUDPReplayWindow   = 5 * time.Minute
	DefaultFailsPerSecond    = 1
	DefaultFailBurst         = 20
	DefaultMaxClients        = 1 << 16
)

// Options configure a Server.
type Options struct {
	// Listener and PacketConn are the bound --ss-listen sockets; either may be
	// nil to serve one transport only. The server owns them.
	Listener   net.Listener
	PacketConn net.PacketConn
	Egress     *egress.Dialer // required: every outbound flow goes through it
	Log        *slog.Logger   // nil: discard
	Metrics    *metrics.Set   // nil: a private set

	// HandshakeTimeout bounds the time from accept to an authenticated first
	// chunk; a connection that fails authentication is drained until then.
	HandshakeTimeout time.Duration
	// UDPTimeout closes a UDP NAT session idle that long.
	UDPTimeout time.Duration
	// ReplayCapacity and ReplayWindow size the salt filter.
	ReplayCapacity int
	ReplayWindow   time.Duration
	// UDPReplayCapacity and UDPReplayWindow size the datagram salt filter.
	UDPReplayCapacity int
	UDPReplayWindow   time.Duration
	// FailsPerSecond and FailBurst limit failed handshakes per source address.
	FailsPerSecond float64
	FailBurst      int
	// MaxClients bounds the per-address caches (last key, failure buckets).
	MaxClients int
	Now        func() time.Time
}

// Server is the Shadowsocks data plane. It implements plane.Plane.
type Server struct {
	o      Options
	log    *slog.Logger
	epoch  string
	keys   atomic.Pointer[keySet]
	states map[string]*keyState // every key seen this epoch; Apply's goroutine only
	smu    sync.Mutex           // guards states against Counters
	salts  *saltFilter
	// udpSalts are datagram salts, ours included: a reply reflected back
	// at the server would otherwise authenticate as a client datagram.
	udpSalts *saltFilter
	last     *clientCache
	fails    *failLimiter
	m        serverMetrics

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
	conns  sync.Map // every live net.Conn, closed by Close
	run    *workers // the TCP handlers and relays
	// sockLn accepts on the listener's descriptor; nil: through net.
	sockLn *sockListener
	bufs   sync.Pool // *relayBufs: a relay's 64 KiB of buffers, reused
	// derivers are HKDF states for the server's own salts and UDP packets.
	derivers sync.Pool // *deriver
}

// relayBufs are the buffers of one relayed TCP connection.
type relayBufs struct {
	// up holds the chunks one read from the client brings (in holds two),
	// down one chunk.
	up, down []byte
	rd, wr   []byte // the stream reader's and writer's sealed chunk
	// in batches the client's small length chunks and large payload chunks
	// into few reads.
	in *bufio.Reader
	// pre hands the stream reader what the handshake read past the
	// first length chunk, then in.
	pre prefixReader
}

func newRelayBufs() any {
	return &relayBufs{up: make([]byte, 2*maxPayload), down: make([]byte, maxPayload),
		rd: make([]byte, maxPayload+tagSize), wr: make([]byte, 0, maxSaltSize+lenChunkSize+maxPayload+tagSize),
		in: bufio.NewReaderSize(nil, 2*(maxPayload+tagSize+lenChunkSize))}
}

var _ plane.Plane = (*Server)(nil)

// New starts serving on the given sockets.
func New(o Options) (*Server, error) {
	if o.Egress == nil {
		return nil, errors.New("outline: an egress dialer is required")
	}
	if o.Listener == nil && o.PacketConn == nil {
		return nil, errors.New("outline: neither a listener nor a packet conn")
	}
	o.defaults()
	epoch := make([]byte, 8)
	if _, err := rand.Read(epoch); err != nil {
		return nil, fmt.Errorf("outline: epoch: %w", err)
	}
	s := &Server{o: o, log: o.Log, epoch: hex.EncodeToString(epoch), states: map[string]*keyState{},
		salts:    newSaltFilter(o.ReplayCapacity, o.ReplayWindow, o.Now),
		udpSalts: newSaltFilter(o.UDPReplayCapacity, o.UDPReplayWindow, o.Now),
		last:     newClientCache(o.MaxClients),
		fails:    newFailLimiter(o.FailsPerSecond, o.FailBurst, o.MaxClients)}
	s.keys.Store(newKeySet(nil))
	s.bufs.New = newRelayBufs
	s.derivers.New = func() any { return &deriver{h: sha1.New()} }
	s.m = newServerMetrics(o.Metrics, s)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.run = newWorkers(s.ctx, &s.wg)
	if o.Listener != nil {
		s.sockLn = newSockListener(o.Listener)
		s.wg.Go(s.acceptLoop)
	}
	if o.PacketConn != nil {
		u := newUDPRelay(s, o.PacketConn)
		s.wg.Go(u.run)
	}
	return s, nil
}

func (o *Options) defaults() {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = metrics.NewSet()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	setDur := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	setDur(&o.HandshakeTimeout, DefaultHandshakeTimeout)
	setDur(&o.UDPTimeout, DefaultUDPTimeout)
	setDur(&o.ReplayWindow, DefaultReplayWindow)
	setDur(&o.UDPReplayWindow, DefaultUDPReplayWindow)
	if o.ReplayCapacity <= 0 {
		o.ReplayCapacity = DefaultReplayCapacity
	}
	if o.UDPReplayCapacity <= 0 {
		o.UDPReplayCapacity = DefaultUDPReplayCapacity
	}
	if o.FailsPerSecond <= 0 {
		o.FailsPerSecond = DefaultFailsPerSecond
	}
	if o.FailBurst <= 0 {
		o.FailBurst = DefaultFailBurst
	}
	if o.MaxClients <= 0 {
		o.MaxClients = DefaultMaxClients
	}
}

// Name implements plane.Plane.
func (s *Server) Name() string { return "outline" }

// Types implements plane.Plane.
func (s *Server) Types() []model.KeyType { return []model.KeyType{model.Outline} }

// Apply installs exactly creds. An unchanged version keeps its entry; a
// changed one gets new limits, and its connections are closed only if the
// password or cipher changed.
func (s *Server) Apply(_ context.Context, creds []plane.Credential) error {
	now := s.o.Now()
	old := s.keys.Load()
	list := make([]*keyEntry, 0, len(creds))
	var errs []error
	seen := make(map[string]bool, len(creds))
	for _, c := range creds {
		if seen[c.ID] {
			continue
		}
		e, err := s.entryFor(old, c, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("outline key %s: %w", c.ID, err))
			continue
		}
		seen[c.ID] = true
		list = append(list, e)
	}
	s.keys.Store(newKeySet(list))
	for id, e := range old.byID {
		if !seen[id] {
			e.st.remove()
		}
	}
	return errors.Join(errs...)
}

// entryFor returns the entry for c, reusing what the old set had.
func (s *Server) entryFor(old *keySet, c plane.Credential, now time.Time) (*keyEntry, error) {
	prev := old.byID[c.ID]
	if prev != nil {
		if cfg := prev.st.cfg.Load(); cfg != nil && cfg.version == c.Version && c.Version != 0 {
			// Same record: only the budget moves, every sync.
			if cfg.budget != c.Budget || cfg.mark != s.mark(c) {
				n := *cfg
				n.budget, n.mark = c.Budget, s.mark(c)
				prev.st.configure(&n, now)
			}
			return prev, nil
		}
	}
	sec, err := ParseSecret(c.Secret)
	if err != nil {
		return nil, err
	}
	ci, err := NewCipher(sec.Method, sec.Password)
	if err != nil {
		return nil, err
	}
	s.smu.Lock()
	st := s.states[c.ID]
	if st == nil {
		st = newKeyState(c.ID)
		s.states[c.ID] = st
	}
	s.smu.Unlock()
	if prev != nil && (prev.c.Method() != ci.Method() || string(prev.c.key) != string(ci.key)) {
		st.closeAll() // connections under the old password must not outlive it
	}
	st.configure(&keyConfig{version: c.Version, limits: c.Limits, budget: c.Budget, mark: s.mark(c), cipher: ci}, now)
	return &keyEntry{st: st, c: ci}, nil
}

// mark is c's Mark in this plane's counters: from another epoch it is 0.
func (s *Server) mark(c plane.Credential) uint64 {
	if c.MarkEpoch != s.epoch {
		return 0
	}
	return c.Mark
}

// Counters implements plane.Plane: every key seen in this epoch, removed
// ones too, so a counter never goes back.
func (s *Server) Counters(context.Context) (plane.Snapshot, error) {
	s.smu.Lock()
	out := make([]plane.Counter, 0, len(s.states))
	for _, st := range s.states {
		out = append(out, st.counter())
	}
	s.smu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return plane.Snapshot{Epoch: s.epoch, Counters: out}, nil
}

// StopAccepting stops taking new TCP connections and leaves the open ones
// be: at an upgrade the successor accepts on the same socket. Closing
// Options.Listener alone is not enough, as the raw accepts run on a
// duplicate of its descriptor (sock_linux.go) that would keep the socket
// accepting here too.
func (s *Server) StopAccepting() {
	if s.o.Listener != nil {
		s.o.Listener.Close()
	}
	if s.sockLn != nil {
		s.sockLn.close()
	}
}

// Close stops serving, closes every connection and waits for the workers.
func (s *Server) Close() error {
	s.once.Do(func() {
		s.cancel()
		s.StopAccepting()
		if s.o.PacketConn != nil {
			s.o.PacketConn.Close()
		}
		s.conns.Range(func(k, _ any) bool {
			k.(net.Conn).Close()
			return true
		})
		for _, e := range s.keys.Load().list {
			e.st.remove()
		}
	})
	s.wg.Wait()
	return nil
}

// aead derives c's subkey for salt with a pooled deriver.
func (s *Server) aead(c *Cipher, salt []byte) (cipher.AEAD, error) {
	d := s.derivers.Get().(*deriver)
	d.reset(salt)
	a, err := c.aeadWith(d)
	d.wipe()
	s.derivers.Put(d)
	return a, err
}

// track registers a live socket so Close can end it; the returned func
// forgets it.
func (s *Server) track(c net.Conn) func() {
	s.conns.Store(c, struct{}{})
	if s.ctx.Err() != nil {
		c.Close()
	}
	return func() { s.conns.Delete(c) }
}
