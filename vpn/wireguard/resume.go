package wireguard

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.zx2c4.com/wireguard/device"
)

// A peer taken off the device (suspended, revoked then restored, cut at its
// cap or expiry) loses its session on the server, while its client keeps
// the session and goes on sending with it: wireguard-go starts a new
// handshake only after ~15 s without an answer (KeepaliveTimeout +
// RekeyTimeout). When the peer comes back, the server sets the endpoint it
// last heard the client from and starts the handshake itself, so traffic
// resumes within a round trip.

const (
	// recentTTL is how long a removed peer's endpoint is remembered.
	recentTTL = 30 * time.Minute
	// recentMax bounds the remembered endpoints.
	recentMax = 1 << 16
)

// lastSeen is where a removed peer was last heard from, and when it left.
type lastSeen struct {
	ep netip.AddrPort
	at time.Time
}

// rememberLocked keeps the endpoint of a peer leaving the device for good.
func (s *Server) rememberLocked(p *peer, now time.Time) {
	if !p.endpoint.IsValid() {
		return
	}
	if len(s.recent) >= recentMax {
		s.pruneRecentLocked(now)
		if len(s.recent) >= recentMax {
			return
		}
	}
	s.recent[p.keyHex] = lastSeen{ep: p.endpoint, at: now}
}

func (s *Server) pruneRecentLocked(now time.Time) {
	for k, r := range s.recent {
		if now.Sub(r.at) >= recentTTL {
			delete(s.recent, k)
		}
	}
}

// resumeLocked continues the UAPI lines of a peer being put (back) on the
// device with the endpoint its client was last heard from, if known, and
// queues a handshake to it for greetLocked.
func (s *Server) resumeLocked(p *peer, now time.Time, b *strings.Builder) {
	ep := p.endpoint
	if r, ok := s.recent[p.keyHex]; ok {
		if !ep.IsValid() && now.Sub(r.at) < recentTTL {
			ep = r.ep
		}
		delete(s.recent, p.keyHex)
	}
	if !ep.IsValid() {
		return
	}
	p.endpoint = ep
	fmt.Fprintf(b, "endpoint=%s\n", ep)
	s.greet = append(s.greet, p.keyHex)
}

// greetDelay is how long a re-added peer's client has to start a handshake
// itself (a client that reconnects does) before the server greets it; it
// is well under TCP's first retransmission (1 s), so that the client's
// retransmitted packets find the new session. From the re-add on, the
// knock (lazy.go) watches for the client's own initiation: one seen before
// the greeting is due cancels it, as does one the device has consumed (the
// peer's rx count, new with the device peer, is no longer 0). A client with
// a stale session sends only transport packets, which neither can
// attribute to it, and is greeted. A greeting that crosses the client's
// own initiation anyway is handled like any initiation of the server's
// (crossing.go).
const greetDelay = 300 * time.Millisecond

// greetings are the pending greetings by peer key: watching until
// greetStale sends them, unless the knock saw the client initiate first.
// (A greeting and the client's initiation that cross anyway, one passing
// the other on the way, are sorted out like any two (crossing.go).)
type greetings struct {
	n  atomic.Int32 // len(m), for the knock's fast path
	mu sync.Mutex
	m  map[[32]byte]bool // true: the client initiated, no greeting
}

// watch registers keys whose greetings are due.
func (g *greetings) watch(keys [][32]byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.m == nil {
		g.m = map[[32]byte]bool{}
	}
	for _, k := range keys {
		g.m[k] = false
	}
	g.n.Store(int32(len(g.m)))
}

// initiated is the knock's word that key's client sent an initiation: its
// greeting, if still due, is cancelled.
func (g *greetings) initiated(key [32]byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.m[key]; ok {
		g.m[key] = true
	}
}

// send forgets key's greeting and reports whether it is to be sent: it was
// due and its client has not initiated meanwhile.
func (g *greetings) send(key [32]byte) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	initiated, ok := g.m[key]
	delete(g.m, key)
	g.n.Store(int32(len(g.m)))
	return ok && !initiated
}

// greetLocked schedules the handshakes resumeLocked queued, once the
// IpcSet that re-added their peers has succeeded (ok); otherwise it drops
// them.
func (s *Server) greetLocked(ok bool) {
	defer func() { s.greet = s.greet[:0] }()
	if !ok || len(s.greet) == 0 {
		return
	}
	keys, at := append([]string(nil), s.greet...), s.o.Now()
	raw := make([][32]byte, 0, len(keys))
	for _, k := range keys {
		if p := s.byKey[k]; p != nil {
			raw = append(raw, p.key)
		}
	}
	s.greeted.watch(raw)
	time.AfterFunc(greetDelay, func() { s.greetStale(keys, at) })
}

// greetStale starts a handshake with each peer in keys that is still on
// the device, has not completed one since at, and whose client has not
// started one itself (greetings.send; a device peer's rx count starts at 0
// when it is re-added, and an initiation is the first thing it counts).
func (s *Server) greetStale(keys []string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	raw := make(map[string]device.NoisePublicKey, len(keys))
	for _, k := range keys {
		var pk device.NoisePublicKey
		if _, err := hex.Decode(pk[:], []byte(k)); err == nil {
			raw[k] = pk
		}
	}
	dev, ok := s.devicePeersLocked()
	for k, pk := range raw {
		due := s.greeted.send(pk) // forgets the greeting in any case
		d, there := dev[k]
		if !ok || !due || !there || d.handshake.After(at) || d.rx > 0 {
			continue
		}
		if dp := s.dev.LookupPeer(pk); dp != nil {
			if err := dp.SendHandshakeInitiation(false); err != nil {
				s.log.Debug("wireguard_resume", "error", err.Error())
			}
		}
	}
}

// devicePeersLocked is the device's peers as IpcGet tells them; false when
// the server is closing (the device may be gone) or the read failed.
func (s *Server) devicePeersLocked() (map[string]devPeer, bool) {
	if s.ctx.Err() != nil {
		return nil, false
	}
	out, err := s.dev.IpcGet()
	if err != nil {
		return nil, false
	}
	dev, err := parseIpcGet(out)
	return dev, err == nil
}
