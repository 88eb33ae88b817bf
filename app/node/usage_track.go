package node

import (
	"context"
	"sync"

	"github.com/usipipo/usipipo/app/plane"
	"github.com/usipipo/usipipo/store"
)

// usagePlane sits between the reconcile loop and a data plane during the
// life of one node process, so that an upgrade can account every byte:
// it remembers the last counters the loop read (its final reading before
// the store is released is what the store holds), and after a failed
// upgrade it lets a new reconcile loop resume on the same running plane
// without counting those bytes again.
type usagePlane struct {
	plane.Plane
	// base is the real reading already accounted when a new loop resumed on
	// this plane (nil: none); view is the epoch that loop sees.
	base *plane.Snapshot
	view string

	mu   sync.Mutex
	last plane.Snapshot // the real reading last handed to the loop
}

func trackUsage(planes []plane.Plane) []plane.Plane {
	out := make([]plane.Plane, len(planes))
	for i, p := range planes {
		out[i] = &usagePlane{Plane: p}
	}
	return out
}

// resumed returns a view of p for a new reconcile loop: counters start
// from what the previous loop last read.
func (p *usagePlane) resumed() *usagePlane {
	last := p.lastReading()
	return &usagePlane{Plane: p.Plane, base: &last, view: last.Epoch + "+resumed", last: last}
}

func (p *usagePlane) lastReading() plane.Snapshot {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}

// Counters implements plane.Plane.
func (p *usagePlane) Counters(ctx context.Context) (plane.Snapshot, error) {
	snap, err := p.Plane.Counters(ctx)
	if err != nil {
		return snap, err
	}
	p.mu.Lock()
	p.last = snap
	p.mu.Unlock()
	if p.base == nil || snap.Epoch != p.base.Epoch {
		return snap, nil
	}
	base := byID(*p.base)
	out := plane.Snapshot{Epoch: p.view, Counters: make([]plane.Counter, len(snap.Counters))}
	for i, c := range snap.Counters {
		b := base[c.ID]
		c.Rx -= min(c.Rx, b.Rx)
		c.Tx -= min(c.Tx, b.Tx)
		out.Counters[i] = c
	}
	return out, nil
}

// Apply implements plane.Plane: marks of the resumed view are moved back
// into the plane's own counters.
func (p *usagePlane) Apply(ctx context.Context, creds []plane.Credential) error {
	if p.base == nil {
		return p.Plane.Apply(ctx, creds)
	}
	base := byID(*p.base)
	own := make([]plane.Credential, len(creds))
	for i, c := range creds {
		var mark uint64
		if c.MarkEpoch == p.view {
			mark = c.Mark
		}
		b := base[c.ID]
		c.Mark, c.MarkEpoch = b.Rx+b.Tx+mark, p.base.Epoch
		own[i] = c
	}
	return p.Plane.Apply(ctx, own)
}

// ownPlane is the data plane under a usagePlane.
func ownPlane(p plane.Plane) plane.Plane {
	if up, ok := p.(*usagePlane); ok {
		return up.Plane
	}
	return p
}

func byID(s plane.Snapshot) map[string]plane.Counter {
	m := make(map[string]plane.Counter, len(s.Counters))
	for _, c := range s.Counters {
		m[c.ID] = c
	}
	return m
}

// unaccounted is what the planes moved since the readings their reconcile
// loop last committed: the usage an old process hands its successor.
func unaccounted(ctx context.Context, planes []plane.Plane, final map[string]plane.Snapshot) []store.UsageDelta {
	var out []store.UsageDelta
	for _, pl := range planes {
		p, ok := pl.(*usagePlane)
		if !ok {
			continue
		}
		snap, ok := final[p.Name()]
		if !ok {
			var err error
			if snap, err = p.Plane.Counters(ctx); err != nil {
				continue
			}
		}
		last := p.lastReading()
		prev := map[string]plane.Counter{}
		if last.Epoch == snap.Epoch {
			prev = byID(last)
		}
		for _, c := range snap.Counters {
			b := prev[c.ID]
			rx, tx := c.Rx-min(c.Rx, b.Rx), c.Tx-min(c.Tx, b.Tx)
			if rx == 0 && tx == 0 {
				continue
			}
			out = append(out, store.UsageDelta{ID: c.ID, Rx: rx, Tx: tx, LastSeen: c.LastSeen.UTC()})
		}
	}
	return out
}
