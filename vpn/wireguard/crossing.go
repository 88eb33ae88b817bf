package wireguard

import (
	"net/netip"
	"sync"
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
// So both directions are recorded, and whichever initiation came first
// wins: the knock (lazy.go) drops a peer's initiation from an address the
// device sent one to within crossWindow, and the bind does not send the
// device's initiation to an address whose peer's initiation the knock let
// through and the device has not answered yet (the device answers that
// one instead; wireguard-go retries its own later if no session comes of
// it). The knock and the bind decide under one lock, so they never both
// let theirs pass. A client at another address (it moved, or the server's
// initiation went to a stale endpoint) is not held back.

// crossWindow is how long an initiation stands against the other side's
// from the same address: one sent before its sender saw the other arrives
// within about a round trip (a slow client's send, a long path, a loaded
// server between the knock and the device). Past it, a side that starts
// over is not held back; within it, a client whose initiation crossed
// waits at most for its retry (5 s) if the server's was lost.
const crossWindow = 2 * time.Second

// crossingsMax bounds the addresses remembered each way; past it (that
// many handshakes within crossWindow) new ones are not guarded.
const crossingsMax = 1 << 16

// crossings are the addresses initiations went to (sent) and came from
// (heard), with when.
type crossings struct {
	mu            sync.Mutex
	sentTo, heard map[netip.AddrPort]time.Time
}

// send reports whether the device may send an initiation to dst at now,
// recording it if so: not while an initiation from dst that passed the
// knock within crossWindow awaits the device's answer.
func (c *crossings) send(dst netip.AddrPort, now time.Time) bool {
	dst = unmapPort(dst)
	c.mu.Lock()
	defer c.mu.Unlock()
	if at, ok := c.heard[dst]; ok && now.Sub(at) < crossWindow {
		return false
	}
	c.sentTo = record(c.sentTo, dst, now)
	return true
}

// crosses reports whether an initiation from src at now would cross one
// the device sent there; if not, it is recorded as heard.
func (c *crossings) crosses(src netip.AddrPort, now time.Time) bool {
	src = unmapPort(src)
	c.mu.Lock()
	defer c.mu.Unlock()
	if at, ok := c.sentTo[src]; ok && now.Sub(at) < crossWindow {
		return true
	}
	c.heard = record(c.heard, src, now)
	return false
}

// answered records that the device answered an initiation from dst: its
// own initiations there are no longer held back.
func (c *crossings) answered(dst netip.AddrPort) {
	dst = unmapPort(dst)
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.heard, dst)
}

// record sets m[a] = now, pruning m when it is full.
func record(m map[netip.AddrPort]time.Time, a netip.AddrPort, now time.Time) map[netip.AddrPort]time.Time {
	if m == nil {
		m = map[netip.AddrPort]time.Time{}
	}
	if len(m) >= crossingsMax {
		prune(m, now)
		if len(m) >= crossingsMax {
			return m
		}
	}
	m[a] = now
	return m
}

// prune forgets the initiations that no longer stand.
func (c *crossings) prune(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	prune(c.sentTo, now)
	prune(c.heard, now)
}

func prune(m map[netip.AddrPort]time.Time, now time.Time) {
	for a, at := range m {
		if now.Sub(at) >= crossWindow {
			delete(m, a)
		}
	}
}

func unmapPort(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}
