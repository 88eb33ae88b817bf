package wireguard

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/usipipo/usipipo/app/plane"
)

// activeWindow is how recent a handshake makes a peer active (WireGuard
// rekeys every 2 minutes while traffic flows).
const activeWindow = 3 * time.Minute

// Apply implements plane.Plane: one IpcSet adds, updates and removes only
// the peers that changed; unchanged peers keep their sessions.
func (s *Server) Apply(ctx context.Context, creds []plane.Credential) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Read first, so that the counts of peers about to leave the device are
	// kept in their base.
	if err := s.readLocked(); err != nil {
		return err
	}
	want := make(map[string]plane.Credential, len(creds))
	var errs []error
	for _, c := range creds {
		want[c.ID] = c
	}
	var b strings.Builder
	for id, p := range s.peers {
		if _, ok := want[id]; !ok {
			s.dropLocked(p, &b)
		}
	}
	for _, c := range creds {
		if err := s.upsertLocked(c, &b); err != nil {
			errs = append(errs, err)
		}
	}
	s.enforceLocked(s.o.Now(), &b)
	if err := s.ipcSetLocked(b.String()); err != nil {
		s.greetLocked(false)
		return err
	}
	s.greetLocked(true)
	s.publishAddrsLocked()
	cerr := s.syncKernelLocked(ctx)
	if len(errs) > 0 {
		return errors.Join(fmt.Errorf("wireguard: %d credentials not installed, first: %w", len(errs), errs[0]), cerr)
	}
	return cerr
}

// dropLocked removes a peer for good and closes its flows.
func (s *Server) dropLocked(p *peer, b *strings.Builder) {
	if p.onDevice {
		p.uapiRemove(b)
		p.onDevice = false
		s.rememberLocked(p, s.o.Now())
	}
	p.live.closeFlows(true)
	s.endFlowsLocked(p)
	delete(s.peers, p.id)
	if s.byKey[p.keyHex] == p {
		delete(s.byKey, p.keyHex)
	}
}

// upsertLocked adds a new credential or refreshes an installed one. A new
// version is re-decoded; a changed public key is a different device peer.
func (s *Server) upsertLocked(c plane.Credential, b *strings.Builder) error {
	old := s.peers[c.ID]
	if old != nil && old.version == c.Version {
		old.setCred(c)
		return nil
	}
	np, err := newPeer(c)
	if err != nil {
		return err
	}
	if other := s.byKey[np.keyHex]; other != nil && other.id != c.ID {
		return fmt.Errorf("credential %s: public key already used by %s", c.ID, other.id)
	}
	if old == nil {
		np.live.kick = s.kickEnforce
		s.peers[c.ID] = np
		s.byKey[np.keyHex] = np
		return nil
	}
	// Keep the counts, sources, live flows and device presence of the old version.
	if old.keyHex != np.keyHex {
		if old.onDevice {
			old.uapiRemove(b)
			old.base, old.last, old.onDevice = old.total(), traffic{}, false
		}
		delete(s.byKey, old.keyHex)
		s.byKey[np.keyHex] = old
		old.live.closeFlows(false)
		s.endFlowsLocked(old)
	} else if old.onDevice {
		// Same key: reconfigure in place (PSK and addresses) without a new session.
		old.keyHex, old.pskHex, old.v4, old.v6 = np.keyHex, np.pskHex, np.v4, np.v6
		old.uapiAdd(b)
	}
	old.keyHex, old.key, old.pskHex, old.v4, old.v6, old.version = np.keyHex, np.key, np.pskHex, np.v4, np.v6, np.version
	old.setCred(c)
	return nil
}

// enforceLocked puts every peer in the state its limits call for: cut
// peers leave the device (and their flows close), the others are on it with
// their speed.
func (s *Server) enforceLocked(now time.Time, b *strings.Builder) {
	for _, p := range s.peers {
		st := p.decide(now, s.epoch)
		if st == cut {
			if p.onDevice {
				p.uapiRemove(b)
				p.base, p.last, p.onDevice = p.total(), traffic{}, false
				p.live.closeFlows(false)
				s.endFlowsLocked(p)
				s.log.Info("wireguard_peer_cut", "credential", p.id)
			}
			p.state, p.parked = cut, false
			continue
		}
		p.state = st
		p.watchBudget(s.epoch)
		p.live.setSpeed(p.speed())
		switch {
		case p.onDevice && s.idleLocked(p, now):
			p.uapiRemove(b)
			p.base, p.last, p.onDevice, p.parked = p.total(), traffic{}, false, true
		case !p.onDevice && !s.parkLocked(p, now):
			p.uapiAdd(b)
			s.resumeLocked(p, now, b)
			p.onDevice, p.parked, p.since = true, false, now
		}
	}
}

func (s *Server) ipcSetLocked(cmd string) error {
	if cmd == "" {
		return nil
	}
	if err := s.dev.IpcSet(cmd); err != nil {
		return fmt.Errorf("wireguard: configuring peers: %w", err)
	}
	return nil
}

// publishAddrsLocked replaces the forwarders' address table.
func (s *Server) publishAddrsLocked() {
	m := make(map[netip.Addr]*live, 2*len(s.peers))
	var installed int64
	parked := make(map[[32]byte]struct{})
	for _, p := range s.peers {
		if p.parked {
			installed++
			parked[p.key] = struct{}{}
		}
		if !p.onDevice {
			continue
		}
		installed++
		if p.v4.IsValid() {
			m[p.v4] = p.live
		}
		if p.v6.IsValid() {
			m[p.v6] = p.live
		}
	}
	s.byAddr.Store(&m)
	s.parkedKeys.Store(&parked)
	s.m.installed.Set(float64(installed))
}

// readLocked reads the device's counters into the peers.
func (s *Server) readLocked() error {
	out, err := s.dev.IpcGet()
	if err != nil {
		return fmt.Errorf("wireguard: reading device: %w", err)
	}
	dev, err := parseIpcGet(out)
	if err != nil {
		return fmt.Errorf("wireguard: reading device: %w", err)
	}
	now := s.o.Now()
	var active int64
	for key, d := range dev {
		p := s.byKey[key]
		if p == nil || !p.onDevice {
			continue
		}
		s.observeLocked(p, d, now)
		if !p.lastHS.IsZero() && now.Sub(p.lastHS) < activeWindow {
			active++
		}
	}
	s.m.active.Set(float64(active))
	return nil
}

// observeLocked takes one device reading of a peer: byte deltas, handshake,
// endpoint.
func (s *Server) observeLocked(p *peer, d devPeer, now time.Time) {
	if d.rx >= p.last.rx && d.tx >= p.last.tx {
		s.m.rxBytes.Add(int(d.rx - p.last.rx))
		s.m.txBytes.Add(int(d.tx - p.last.tx))
	} else {
		// The device restarted the peer's counts (it was re-created): keep them.
		p.base = p.total()
	}
	p.last = traffic{d.rx, d.tx}
	if d.handshake.After(p.lastHS) {
		if !p.lastHS.IsZero() || d.handshake.After(now.Add(-2*s.o.Interval)) {
			s.m.handshakes.Inc()
		}
		p.lastHS = d.handshake
	}
	if d.endpoint.IsValid() {
		p.endpoint = d.endpoint
		p.sources[d.endpoint.Addr().Unmap()] = now
	}
	for a, t := range p.sources {
		if now.Sub(t) > s.o.SourceWindow {
			delete(p.sources, a)
		}
	}
}

// Counters implements plane.Plane.
func (s *Server) Counters(ctx context.Context) (plane.Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return plane.Snapshot{}, err
	}
	if err := s.readKernelConns(); err != nil {
		// The byte counts matter more: report them with the last count of flows.
		s.log.Warn("wireguard_conntrack", "error", err.Error())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.readLocked(); err != nil {
		return plane.Snapshot{}, err
	}
	snap := plane.Snapshot{Epoch: s.epoch, Counters: make([]plane.Counter, 0, len(s.peers))}
	for _, p := range s.peers {
		t := p.total()
		snap.Counters = append(snap.Counters, plane.Counter{ID: p.id, Rx: t.rx, Tx: t.tx, Conns: p.live.conns() + s.kernelConnsLocked(p),
			Sources: len(p.sources), LastSeen: p.lastHS})
	}
	return snap, nil
}

// loop reads the counters and enforces the limits every Interval, so that
// expiry and budgets act without a write.
func (s *Server) loop() {
	defer s.wg.Done()
	t := time.NewTicker(s.o.Interval)
	defer t.Stop()
	ticks := 0
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		case <-s.kick:
		}
		if err := s.tick(); err != nil {
			s.log.Warn("wireguard_enforce", "error", err.Error())
		}
		s.crossed.prune(time.Now())
		// The firewall's counters cost a process: read every 5th tick;
		// whether its rules are still the right ones, every 60th.
		if ticks++; s.kern != nil && ticks%5 == 0 {
			if err := s.kern.readCounters(s.ctx, s.m); err != nil && s.ctx.Err() == nil {
				s.log.Warn("wireguard_firewall_counters", "error", err.Error())
			}
		}
		if s.kern != nil && ticks%60 == 0 {
			if err := s.refreshFirewall(); err != nil && s.ctx.Err() == nil {
				s.log.Warn("wireguard_firewall", "error", err.Error())
			}
		}
	}
}

func (s *Server) tick() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.readLocked(); err != nil {
		return err
	}
	var b strings.Builder
	s.enforceLocked(s.o.Now(), &b)
	if b.Len() == 0 {
		return nil
	}
	if err := s.ipcSetLocked(b.String()); err != nil {
		s.greetLocked(false)
		return err
	}
	s.greetLocked(true)
	s.publishAddrsLocked()
	return s.syncKernelLocked(s.ctx)
}
