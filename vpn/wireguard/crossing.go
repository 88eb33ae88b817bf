package wireguard

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Two handshakes crossing leave both sides without a session until the
// client's retry 5 s later: each side consumes the other's initiation,
// which overwrites its own handshake state, answers it, and then refuses
// the answer to its own. WireGuard has no tie-break; on a node it happens
// whenever the device starts a handshake at the moment a client does: a
// greeting (resume.go), or wireguard-go's own initiation when a packet
// waits for a peer without a session, which is what a renewed or restored
// peer's lingering flows make while its client reconnects.
//
// So the bind records where the device sends initiations, and the knock
// (lazy.go) drops a client's initiation from such an address within
// crossWindow: the client answers the server's instead. Only the server
// breaks the tie, so the two never both wait. A client at another address
// (it moved, or the server's initiation went to a stale endpoint) is not
// held back.

// crossWindow is how long an initiation of the server's stands against
// initiations from the address it went to: one the client sent before it
// saw the server's arrives within about a round trip (a slow client's send,
// a long path). Past it, a client that starts over is not held back; within
// it, a client whose initiation crossed waits at most for its retry (5 s)
// if the server's was lost.
const crossWindow = 2 * time.Second

// crossingsMax bounds the addresses remembered; past it (initiations to
// that many clients within crossWindow) new ones are not guarded.
const crossingsMax = 1 << 16

// crossings are the addresses the device sent handshake initiations to,
// with when.
type crossings struct {
	n  atomic.Int32 // len(m), for the knock's fast path
	mu sync.Mutex
	m  map[netip.AddrPort]time.Time
}

// sent records an initiation of the server's to dst at now.
func (c *crossings) sent(dst netip.AddrPort, now time.Time) {
	dst = unmapPort(dst)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[netip.AddrPort]time.Time{}
	}
	if len(c.m) >= crossingsMax {
		c.pruneLocked(now)
		if len(c.m) >= crossingsMax {
			return
		}
	}
	c.m[dst] = now
	c.n.Store(int32(len(c.m)))
}

// crosses reports whether an initiation from src at now would cross one of
// the server's.
func (c *crossings) crosses(src netip.AddrPort, now time.Time) bool {
	if c.n.Load() == 0 {
		return false
	}
	src = unmapPort(src)
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.m[src]
	if ok && now.Sub(at) >= crossWindow {
		delete(c.m, src)
		c.n.Store(int32(len(c.m)))
		ok = false
	}
	return ok
}

// prune forgets the initiations that no longer stand, so that the knock's
// fast path opens again.
func (c *crossings) prune(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pruneLocked(now)
}

func (c *crossings) pruneLocked(now time.Time) {
	for a, at := range c.m {
		if now.Sub(at) >= crossWindow {
			delete(c.m, a)
		}
	}
	c.n.Store(int32(len(c.m)))
}

func unmapPort(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}
