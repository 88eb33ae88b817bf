package wireguard

import (
	"encoding/hex"
	"net/netip"
	"strings"

	"golang.zx2c4.com/wireguard/device"
)

// A zero-downtime upgrade moves the UDP socket to a new process whose
// device has no sessions: a peer's packets are dropped until the peer
// starts a new handshake, which wireguard-go does only after ~15 s without
// an answer (KeepaliveTimeout + RekeyTimeout). The old process hands over
// where each peer was last heard from, and the new one starts the
// handshakes itself, so peers pass traffic again within a round trip.

// Endpoints returns where each installed peer was last heard from, by
// credential id.
func (s *Server) Endpoints() map[string]netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]netip.AddrPort{}
	get, err := s.dev.IpcGet()
	if err != nil {
		return out
	}
	dev, err := parseIpcGet(get)
	if err != nil {
		return out
	}
	for key, d := range dev {
		if p := s.byKey[key]; p != nil && p.onDevice && d.endpoint.IsValid() {
			out[p.id] = d.endpoint
		}
	}
	return out
}

// Reach puts every installed peer named in eps (by credential id) on the
// device (a parked one too: its client is known to be there), sets its
// endpoint and starts a handshake with it. It returns how many handshakes
// it started.
func (s *Server) Reach(eps map[string]netip.AddrPort) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	var keys []device.NoisePublicKey
	var woken []*peer
	for keyHex, p := range s.byKey {
		ep, ok := eps[p.id]
		if !ok || !ep.IsValid() || p.state == cut {
			continue
		}
		var pk device.NoisePublicKey
		if _, err := hex.Decode(pk[:], []byte(keyHex)); err != nil {
			continue
		}
		switch {
		case p.onDevice:
			b.WriteString("public_key=" + keyHex + "\nupdate_only=true\n")
		case p.parked:
			p.uapiAdd(&b)
			woken = append(woken, p)
		default:
			continue
		}
		b.WriteString("endpoint=" + ep.String() + "\n")
		keys = append(keys, pk)
	}
	if len(keys) == 0 {
		return 0
	}
	if err := s.ipcSetLocked(b.String()); err != nil {
		s.log.Warn("wireguard_reach", "error", err.Error())
		return 0
	}
	for _, p := range woken {
		p.onDevice, p.parked, p.since = true, false, s.o.Now()
	}
	if len(woken) > 0 {
		s.publishAddrsLocked()
	}
	n := 0
	for _, pk := range keys {
		if peer := s.dev.LookupPeer(pk); peer != nil && peer.SendHandshakeInitiation(false) == nil {
			n++
		}
	}
	return n
}

// Again starts a new Server with this one's options, on the same UDP
// socket, once this one is closed: in tun mode an upgrade closes the
// interface and firewall so that the successor can create them, and a
// failed upgrade starts them again here. The new Server has no peers until
// Apply, and a new epoch.
func (s *Server) Again() (*Server, error) {
	return New(s.o)
}
