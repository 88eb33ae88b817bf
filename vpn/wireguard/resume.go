package wireguard

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
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
// itself (a client that reconnects does) before the server greets it: two
// handshakes crossing can leave the client without a session until its
// own retry.
const greetDelay = 300 * time.Millisecond

// greetLocked schedules the handshakes resumeLocked queued, once the
// IpcSet that re-added their peers has succeeded (ok); otherwise it drops
// them.
func (s *Server) greetLocked(ok bool) {
	defer func() { s.greet = s.greet[:0] }()
	if !ok || len(s.greet) == 0 {
		return
	}
	keys, at := append([]string(nil), s.greet...), s.o.Now()
	time.AfterFunc(greetDelay, func() { s.greetStale(keys, at) })
}

// greetStale starts a handshake with each peer in keys that is still on
// the device and has not completed one since at.
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
	for _, k := range keys {
		if d, ok := dev[k]; !ok || d.handshake.After(at) {
			continue
		}
		var pk device.NoisePublicKey
		if _, err := hex.Decode(pk[:], []byte(k)); err != nil {
			continue
		}
		if dp := s.dev.LookupPeer(pk); dp != nil {
			if err := dp.SendHandshakeInitiation(false); err != nil {
				s.log.Debug("wireguard_resume", "error", err.Error())
			}
		}
	}
}
