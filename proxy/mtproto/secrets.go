package mtproto

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/usipipo/usipipo/app/plane"
	"github.com/usipipo/usipipo/proxy/mtproto/wire"
	"github.com/usipipo/usipipo/store/model"
)

// maxSourcesPerSecret bounds the distinct client addresses remembered per
// secret, so a secret shared with the world cannot grow memory.
const maxSourcesPerSecret = 4096

// secret is one installed credential and its live state.
type secret struct {
	id  string
	key []byte // the 16 secret bytes

	cred atomic.Pointer[plane.Credential] // limits, budget and mark; replaced by Apply
	rx   atomic.Uint64                    // bytes from clients
	tx   atomic.Uint64                    // bytes to clients

	// Per direction (0: from clients, 1: to clients), as the other planes.
	speed    [2]atomic.Pointer[rate.Limiter] // nil: no speed limit
	throttle [2]atomic.Pointer[rate.Limiter] // nil: cut off at the budget

	mu       sync.Mutex
	removed  bool
	conns    map[net.Conn]struct{} // client sides of live relays
	sources  map[netip.Addr]time.Time
	lastSeen time.Time
}

func newSecret(c plane.Credential) *secret {
	s := &secret{id: c.ID, key: bytes.Clone(c.Secret), conns: map[net.Conn]struct{}{}, sources: map[netip.Addr]time.Time{}}
	s.update(c)
	return s
}

// update installs new limits without touching live connections.
func (s *secret) update(c plane.Credential) {
	c.Secret = nil // keep the key once, in s.key
	old := s.cred.Swap(&c)
	if old != nil && old.Limits.SpeedBps == c.Limits.SpeedBps && old.Limits.ThrottleBps == c.Limits.ThrottleBps {
		return // keep the limiters' state
	}
	for dir := range 2 {
		s.speed[dir].Store(newLimiter(c.Limits.SpeedBps))
		s.throttle[dir].Store(newLimiter(min(c.Limits.ThrottleBps, nonZero(c.Limits.SpeedBps))))
	}
}

// changed reports whether c differs from what the secret holds.
func (s *secret) changed(c plane.Credential) bool {
	cur := s.cred.Load()
	l, m := cur.Limits, c.Limits
	return cur.Version != c.Version || cur.Budget != c.Budget || cur.Mark != c.Mark || cur.MarkEpoch != c.MarkEpoch ||
		!l.ExpiresAt.Equal(m.ExpiresAt) || l.DataCap != m.DataCap || l.SpeedBps != m.SpeedBps ||
		l.ThrottleBps != m.ThrottleBps || l.MaxConns != m.MaxConns
}

func nonZero(v uint64) uint64 {
	if v == 0 {
		return ^uint64(0)
	}
	return v
}

func newLimiter(bps uint64) *rate.Limiter {
	if bps == 0 {
		return nil
	}
	burst := max(int(min(bps, 1<<30)), 4*wire.MaxRecordPayload) // bytes per second, as the other planes
	return rate.NewLimiter(rate.Limit(bps), burst)
}

// overBudget reports whether the credential used its budget, given the
// plane's epoch.
func (s *secret) overBudget(epoch string) bool {
	c := s.cred.Load()
	if c.Budget == plane.NoBudget {
		return false
	}
	used := s.rx.Load() + s.tx.Load()
	mark := c.Mark
	if c.MarkEpoch != epoch || mark > used {
		mark = 0
	}
	return used-mark >= c.Budget
}

func (s *secret) expired(now time.Time) bool {
	e := s.cred.Load().Limits.ExpiresAt
	return !e.IsZero() && !now.Before(e)
}

// cut reports whether the secret must stop serving now: expired, or over
// its budget without a throttle to fall back to.
func (s *secret) cut(now time.Time, epoch string) bool {
	return s.expired(now) || s.overBudget(epoch) && s.throttle[0].Load() == nil
}

// limiter is the rate limiter a relay direction must respect now, if any.
func (s *secret) limiter(dir int, epoch string) *rate.Limiter {
	if s.overBudget(epoch) {
		return s.throttle[dir].Load()
	}
	return s.speed[dir].Load()
}

// admit registers a client connection, enforcing MaxConns.
func (s *secret) admit(c net.Conn, src netip.Addr, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.removed {
		return fmt.Errorf("mtproto: secret %s removed", s.id)
	}
	if m := s.cred.Load().Limits.MaxConns; m > 0 && len(s.conns) >= m {
		return fmt.Errorf("mtproto: secret %s at its %d connections", s.id, m)
	}
	s.conns[c] = struct{}{}
	if _, ok := s.sources[src]; ok || len(s.sources) < maxSourcesPerSecret {
		s.sources[src] = now
	}
	s.lastSeen = now
	return nil
}

func (s *secret) release(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.lastSeen = time.Now()
	s.mu.Unlock()
}

// closeAll closes every live connection of the secret; with remove, it also
// refuses new ones.
func (s *secret) closeAll(remove bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removed = s.removed || remove
	for c := range s.conns {
		c.Close()
	}
	return len(s.conns)
}

// counter reads the secret's counter, forgetting sources older than window.
func (s *secret) counter(now time.Time, window time.Duration) plane.Counter {
	s.mu.Lock()
	defer s.mu.Unlock()
	for a, t := range s.sources {
		if now.Sub(t) > window {
			delete(s.sources, a)
		}
	}
	return plane.Counter{ID: s.id, Rx: s.rx.Load(), Tx: s.tx.Load(), Conns: len(s.conns), Sources: len(s.sources), LastSeen: s.lastSeen}
}

// table is the installed set, replaced as a whole by Apply and read without
// locks by handshakes.
type table struct {
	list []*secret
	byID map[string]*secret
}

// Name implements plane.Plane.
func (*Server) Name() string { return "mtproto" }

// Types implements plane.Plane.
func (*Server) Types() []model.KeyType { return []model.KeyType{model.MTProto} }

// Apply implements plane.Plane: unchanged secrets keep their connections and
// counters, changed limits apply in place, removed secrets (or ones whose
// key changed) have their connections closed.
func (s *Server) Apply(_ context.Context, creds []plane.Credential) error {
	old := s.secrets.Load()
	next := &table{byID: make(map[string]*secret, len(creds))}
	for _, c := range creds {
		if c.Type != "" && c.Type != model.MTProto {
			continue
		}
		if len(c.Secret) != 16 {
			return fmt.Errorf("mtproto: credential %s: secret of %d bytes, want 16", c.ID, len(c.Secret))
		}
		sec, ok := old.byID[c.ID]
		if ok && bytes.Equal(sec.key, c.Secret) {
			if sec.changed(c) {
				sec.update(c)
			}
		} else {
			sec = newSecret(c)
		}
		next.byID[c.ID] = sec
		next.list = append(next.list, sec)
	}
	s.secrets.Store(next)
	for id, sec := range old.byID {
		if next.byID[id] != sec {
			sec.closeAll(true)
		}
	}
	s.enforce(time.Now())
	return nil
}

// Counters implements plane.Plane.
func (s *Server) Counters(context.Context) (plane.Snapshot, error) {
	t := s.secrets.Load()
	now := time.Now()
	snap := plane.Snapshot{Epoch: s.epoch, Counters: make([]plane.Counter, 0, len(t.list))}
	for _, sec := range t.list {
		snap.Counters = append(snap.Counters, sec.counter(now, s.opts.SourceWindow))
	}
	return snap, nil
}

// enforce closes the connections of secrets that expired or ran out of budget.
func (s *Server) enforce(now time.Time) {
	for _, sec := range s.secrets.Load().list {
		if sec.cut(now, s.epoch) {
			if n := sec.closeAll(false); n > 0 {
				s.log.Info("mtproto_cut", "credential", sec.id, "conns", n, "expired", sec.expired(now))
			}
		}
	}
}
