package wireguard

import (
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/blake2s"
	"golang.org/x/time/rate"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/ratelimiter"
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

// A knock costs an X25519 (~50 µs) before it is known whether the sender
// is parked at all, so initiations are sifted cheapest first, as
// wireguard-go's own receive path does (and sifted whether or not any peer
// is parked: a flood that reached the device unsifted would put it under
// load):
//
//   - mac1 (keyed by the server's public key) wrong: dropped outright;
//   - each source address (an IPv6 /64) has its own budget of examinations
//     (wireguard-go's ratelimiter, 20 a second, a burst of 5), so that one
//     flooding source cannot spend the others', and wakesPerSecond bounds
//     them all, for floods from many sources; an initiation over a budget
//     is not examined but goes on to the device;
//   - one examined and found undecryptable is junk the device would refuse
//     too: it is dropped, and its source is marked junky for junkTTL;
//   - a junky source's initiations reach neither the examination nor the
//     device unless they carry a valid mac2, WireGuard's proof that the
//     sender receives at its address: the others get a cookie reply
//     (wireguard-go's own answer under load), so a client that merely
//     shares the address (a carrier's NAT) or whose address is spoofed
//     retries with the cookie 5 s later. Its proven initiations still
//     draw on the source's budget, and over it are dropped.
//
// While greetings are due (resume.go), initiations are examined too: one
// from a client about to be greeted cancels its greeting. One from an
// address the server itself just sent an initiation to is dropped, so that
// the two handshakes do not cross (crossing.go).
//
// Keeping the junk off the device keeps wireguard-go from going "under
// load", where it would answer every client's first initiation with a
// cookie and so delay every peer, parked or not, by 5 s. Left to that
// defence: floods from many sources past the overall budget, and
// well-formed initiations from keys the flooder made itself (they decrypt,
// so they are not junk; revoked clients that keep retrying look the same
// and must not get their carrier's address held back).

// wakesPerSecond bounds the initiations whose sender is worked out.
const wakesPerSecond = 2000

const (
	// junkTTL is how long a source stays junky after its last junk.
	junkTTL = 10 * time.Second
	// junkMax bounds the junky sources remembered (a spoofed flood has
	// many); past it, new ones are not marked.
	junkMax = 1 << 16
)

// Outcomes of the initiations the sieve looks at, a label of
// usipipo_wireguard_knocks_total.
const (
	knockMAC1     = "bad_mac1"     // dropped: mac1 is wrong
	knockJunk     = "junk"         // dropped: mac1 right, the sealed key undecryptable
	knockCookie   = "cookie"       // dropped: from a junky source without mac2; a cookie reply may go back
	knockSource   = "source_limit" // its source's budget was spent: passed on unexamined, or dropped if junky
	knockLoad     = "load_limit"   // the overall budget was spent: passed on unexamined
	knockWoken    = "woken"        // a parked peer was put back on the device
	knockNotMine  = "not_parked"   // a valid initiation of a peer on the device (or unknown)
	knockCrossing = "crossing"     // dropped: it would cross the server's own initiation (crossing.go)
)

// sieve holds the knocks' budgets and the junky sources.
type sieve struct {
	perSource *ratelimiter.Ratelimiter // examinations by source
	replies   *ratelimiter.Ratelimiter // cookie replies by source
	wakes     *rate.Limiter            // examinations overall
	cookies   device.CookieChecker

	mu    sync.Mutex
	junky map[netip.Addr]time.Time // source key → last junk
}

// newSieve is the sieve of a server with public key public whose overall
// budget is wakes a second (0: wakesPerSecond).
func newSieve(public [32]byte, wakes int) *sieve {
	if wakes <= 0 {
		wakes = wakesPerSecond
	}
	sv := &sieve{perSource: new(ratelimiter.Ratelimiter), replies: new(ratelimiter.Ratelimiter),
		wakes: rate.NewLimiter(rate.Limit(wakes), wakes), junky: map[netip.Addr]time.Time{}}
	sv.perSource.Init()
	sv.replies.Init()
	sv.cookies.Init(device.NoisePublicKey(public))
	return sv
}

// close stops the rate limiters' collectors.
func (sv *sieve) close() {
	sv.perSource.Close()
	sv.replies.Close()
}

// isJunky reports a source marked junky within junkTTL.
func (sv *sieve) isJunky(src netip.Addr, now time.Time) bool {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	if len(sv.junky) == 0 {
		return false
	}
	at, ok := sv.junky[src]
	if ok && now.Sub(at) >= junkTTL {
		delete(sv.junky, src)
		return false
	}
	return ok
}

// markJunk marks src junky.
func (sv *sieve) markJunk(src netip.Addr, now time.Time) {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	if _, ok := sv.junky[src]; !ok && len(sv.junky) >= junkMax {
		for a, at := range sv.junky {
			if now.Sub(at) >= junkTTL {
				delete(sv.junky, a)
			}
		}
		if len(sv.junky) >= junkMax {
			return
		}
	}
	sv.junky[src] = now
}

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

// knock runs on the bind's receive path for every handshake initiation,
// from src: if it comes from a parked peer, the peer is put back on the
// device before the message reaches wireguard-go. It returns false for a
// message the device must not see (see sieve).
func (s *Server) knock(msg []byte, src netip.AddrPort) bool {
	parked := s.parkedKeys.Load()
	anyParked := parked != nil && len(*parked) > 0
	from, now := sourceKey(src.Addr()), time.Now()
	junky := s.sieve.isJunky(from, now)
	greeting := s.greeted.n.Load() > 0
	sv := s.sieve
	if junky {
		// mac2 first: it is what most of a flood lacks (and it covers
		// mac1, so the device would drop a wrong mac1 anyway).
		ep := endpoint{ap: src}
		if !sv.cookies.CheckMAC2(msg, ep.DstToBytes()) {
			s.m.knocks[knockCookie].Inc()
			if sv.replies.Allow(from) && s.inits.validMAC1(msg) {
				s.sendCookie(msg, ep)
			}
			return false
		}
	}
	if !s.inits.validMAC1(msg) {
		s.m.knocks[knockMAC1].Inc()
		return false
	}
	if !sv.perSource.Allow(from) {
		s.m.knocks[knockSource].Inc()
		return !junky
	}
	// Examined even with no peer parked: that is how a junk source is
	// found, before its flood puts the device under load.
	if !sv.wakes.Allow() {
		s.m.knocks[knockLoad].Inc()
		return true
	}
	key, ok := s.inits.initiator(msg)
	if !ok {
		s.m.knocks[knockJunk].Inc()
		sv.markJunk(from, now)
		return false
	}
	if greeting {
		s.greeted.initiated(key) // no greeting: the client is there (resume.go)
	}
	isParked := false
	if anyParked {
		_, isParked = (*parked)[key]
	}
	// A peer's initiation the device will answer (others it drops itself),
	// unless the device just started a handshake with the same address
	// (crossing.go).
	if (isParked || s.dev.LookupPeer(key) != nil) && s.crossed.crosses(src, now) {
		s.m.knocks[knockCrossing].Inc()
		return false // the client answers the server's initiation instead
	}
	if !isParked {
		if anyParked {
			s.m.knocks[knockNotMine].Inc()
		}
		return true
	}
	s.unpark(key)
	return true
}

// sendCookie answers an initiation with a cookie reply, as wireguard-go
// does under load: the client's next initiation carries a mac2 that proves
// it receives at its address.
func (s *Server) sendCookie(msg []byte, ep endpoint) {
	reply, err := s.sieve.cookies.CreateReply(msg, binary.LittleEndian.Uint32(msg[4:8]), ep.DstToBytes())
	if err != nil {
		return
	}
	b := make([]byte, 0, device.MessageCookieReplySize)
	b = binary.LittleEndian.AppendUint32(b, reply.Type)
	b = binary.LittleEndian.AppendUint32(b, reply.Receiver)
	b = append(append(b, reply.Nonce[:]...), reply.Cookie[:]...)
	if _, err := s.o.Conn.WriteTo(b, net.UDPAddrFromAddrPort(ep.ap)); err != nil {
		s.log.Debug("wireguard_cookie", "error", err.Error())
	}
}

// unpark puts the parked peer with key back on the device.
func (s *Server) unpark(key [32]byte) {
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
	s.m.knocks[knockWoken].Inc()
	s.publishAddrsLocked()
}

// sourceKey is the budget a source address draws on: IPv6 hosts get a /64
// each, so an IPv6 source cannot multiply itself.
func sourceKey(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		return netip.PrefixFrom(a, 64).Masked().Addr()
	}
	return a
}

// validMAC1 checks an initiation's mac1, the keyed hash of what precedes
// it under the server's public key: cheap, and what any valid initiation
// to this server carries.
func (in *initiations) validMAC1(msg []byte) bool {
	mac, _ := blake2s.New128(in.mac1Key[:])
	mac.Write(msg[:initMAC1])
	var sum [16]byte
	return subtle.ConstantTimeCompare(mac.Sum(sum[:0]), msg[initMAC1:initMAC1+16]) == 1
}
