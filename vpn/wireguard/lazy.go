package wireguard

import (
	"encoding/hex"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

// Parked peers. wireguard-go holds ~32 KiB of heap and two goroutines for
// every peer on the device (its queues and batch buffers), whether the
// peer is active or not: 10,000 installed peers cost ~370 MB resident. A
// peer that has not completed a handshake for Options.ParkAfter (its
// sessions are long expired, WireGuard rejects keys after 180 s) leaves the
// device with its counts kept, and newly installed peers start that way.
// When a parked peer's client starts a handshake, the bind sees the
// initiation first: its sender is recovered (initiations.initiator), the
// peer is put back on the device, and wireguard-go then answers the same
// message; the client notices nothing.

// wakesPerSecond bounds the initiations whose sender is worked out (one
// X25519 each) on the receive path, so a flood of initiations with a valid
// mac1 cannot stall it; a client turned away retries in 5 s.
const wakesPerSecond = 2000

// parkLocked reports whether a peer that is off the device should stay
// parked: it should unless parking is off or its client is known to be
// there (a restored peer whose endpoint is remembered is greeted instead).
func (s *Server) parkLocked(p *peer, now time.Time) bool {
	if s.o.ParkAfter < 0 {
		return false
	}
	if !p.parked && p.endpoint.IsValid() {
		return false // cut and now restored: resumeLocked greets it
	}
	if r, ok := s.recent[p.keyHex]; ok && now.Sub(r.at) < recentTTL {
		return false
	}
	p.parked = true
	return true
}

// idleLocked reports an on-device peer to park: no handshake (or none
// since it was put on) for ParkAfter, and no open flow.
func (s *Server) idleLocked(p *peer, now time.Time) bool {
	if s.o.ParkAfter < 0 {
		return false
	}
	last := p.lastHS
	if p.since.After(last) {
		last = p.since
	}
	return now.Sub(last) >= s.o.ParkAfter && p.live.conns() == 0
}

// knock runs on the bind's receive path for every handshake initiation: if
// it comes from a parked peer, the peer is put back on the device before
// the message reaches wireguard-go.
func (s *Server) knock(msg []byte) {
	parked := s.parkedKeys.Load()
	if parked == nil || len(*parked) == 0 || !s.wakes.Allow() {
		return
	}
	key, ok := s.inits.initiator(msg)
	if !ok {
		return
	}
	if _, ok := (*parked)[key]; !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.byKey[hex.EncodeToString(key[:])]
	if p == nil || !p.parked || p.onDevice || p.state == cut {
		return
	}
	var b strings.Builder
	p.uapiAdd(&b)
	if err := s.ipcSetLocked(b.String()); err != nil {
		s.log.Warn("wireguard_unpark", "error", err.Error())
		return
	}
	// The firewall's connection limits cover parked peers already.
	p.onDevice, p.parked, p.since = true, false, s.o.Now()
	s.publishAddrsLocked()
}

func newWakeLimiter() *rate.Limiter { return rate.NewLimiter(wakesPerSecond, wakesPerSecond) }
