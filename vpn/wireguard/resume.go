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
// retransmitted packets find the new session.
//
// Two handshakes crossing leave both sides without a session until the
// client's retry 5 s later: each consumes the other's initiation, which
// overwrites its own, and then refuses the response to it. So from the
// re-add on, the knock (lazy.go) watches for the client's own initiation:
// one seen before the greeting is due cancels it (as does one the device
// has consumed: the peer's rx count, new with the device peer, is no
// longer 0), and one from the greeted endpoint after the greeting left is
// dropped while the greeting stands (crossWindow), so that the client
// answers the server's instead. A client with a stale session sends only
// transport packets, which neither can attribute to it, and is greeted.
const greetDelay = 300 * time.Millisecond

// crossWindow is how long a greeting stands against the client's own
// initiations: the answer comes within a round trip, so an initiation sent
// before the client saw the greeting arrives within about as much (a slow
// client's send, a long path). Past it, a client that answered the greeting
// and then starts over (reconnects) is not held back; while it stands, such
// a client waits for its retry (5 s).
const crossWindow = 2 * time.Second

// Phases of a greeting.
const (
	greetWatching  = iota // due at greetDelay
	greetInitiated        // the client started a handshake itself: no greeting
	greetSent             // the server's initiation left for ep at at
)

type greeting struct {
	phase uint8
	ep    netip.AddrPort
	at    time.Time
}

// greetings are the pending and standing greetings by peer key. The knock
// and greetStale change a greeting's phase under mu, so that an initiation
// either cancels the greeting or, arriving after it left, is dropped.
type greetings struct {
	n  atomic.Int32 // len(m), for the knock's fast path
	mu sync.Mutex
	m  map[[32]byte]*greeting
}

// watch registers keys whose greetings are due.
func (g *greetings) watch(keys [][32]byte, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.m == nil {
		g.m = map[[32]byte]*greeting{}
	}
	g.pruneLocked(now)
	for _, k := range keys {
		g.m[k] = &greeting{phase: greetWatching, at: now}
	}
	g.n.Store(int32(len(g.m)))
}

// prune forgets the greetings that no longer stand, so that the knock
// stops examining initiations for them.
func (g *greetings) prune(now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.pruneLocked(now)
	g.n.Store(int32(len(g.m)))
}

func (g *greetings) pruneLocked(now time.Time) {
	for k, gr := range g.m {
		if gr.phase == greetSent && now.Sub(gr.at) >= crossWindow {
			delete(g.m, k)
		}
	}
}

// initiated is the knock's word that key's client sent an initiation from
// src at now; false means drop it: it would cross the greeting sent there.
func (g *greetings) initiated(key [32]byte, src netip.AddrPort, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	gr := g.m[key]
	switch {
	case gr == nil:
		return true
	case gr.phase == greetWatching:
		gr.phase = greetInitiated
		return true
	case gr.phase == greetSent && now.Sub(gr.at) < crossWindow:
		return unmapPort(gr.ep) != unmapPort(src)
	}
	return true
}

// send moves key's greeting to sent, towards ep, unless its client has
// initiated meanwhile (false: no greeting).
func (g *greetings) send(key [32]byte, ep netip.AddrPort, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	gr := g.m[key]
	if gr == nil || gr.phase != greetWatching {
		delete(g.m, key)
		g.n.Store(int32(len(g.m)))
		return false
	}
	gr.phase, gr.ep, gr.at = greetSent, ep, now
	return true
}

// drop forgets key's greeting.
func (g *greetings) drop(key [32]byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.m, key)
	g.n.Store(int32(len(g.m)))
}

func unmapPort(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
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
	s.greeted.watch(raw, time.Now())
	time.AfterFunc(greetDelay, func() { s.greetStale(keys, at) })
}

// greetStale starts a handshake with each peer in keys that is still on
// the device, has not completed one since at, and whose client has not
// started one itself (greetings.send; a device peer's rx count starts at 0
// when it is re-added, and an initiation is the first thing it counts).
func (s *Server) greetStale(keys []string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		return // closing: the device may be gone
	}
	out, err := s.dev.IpcGet()
	if err != nil {
		return
	}
	dev, err := parseIpcGet(out)
	if err != nil {
		return
	}
	sent := false
	for _, k := range keys {
		var pk device.NoisePublicKey
		if _, err := hex.Decode(pk[:], []byte(k)); err != nil {
			continue
		}
		d, ok := dev[k]
		if !ok || d.handshake.After(at) || d.rx > 0 {
			s.greeted.drop(pk)
			continue
		}
		dp := s.dev.LookupPeer(pk)
		if dp == nil || !s.greeted.send(pk, d.endpoint, time.Now()) {
			s.greeted.drop(pk)
			continue
		}
		if err := dp.SendHandshakeInitiation(false); err != nil {
			s.log.Debug("wireguard_resume", "error", err.Error())
			s.greeted.drop(pk)
			continue
		}
		sent = true
	}
	if sent {
		time.AfterFunc(crossWindow, func() { s.greeted.prune(time.Now()) })
	}
}
