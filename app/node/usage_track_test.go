package node

import (
	"context"
	"testing"

	"github.com/usipipo/usipipo/app/plane"
	"github.com/usipipo/usipipo/store/model"
)

// countingPlane is a data plane reduced to its counters and the last set
// it was given.
type countingPlane struct {
	epoch   string
	counts  map[string]plane.Counter
	applied []plane.Credential
}

func (p *countingPlane) Name() string           { return "outline" }
func (p *countingPlane) Types() []model.KeyType { return []model.KeyType{model.Outline} }
func (p *countingPlane) Apply(_ context.Context, c []plane.Credential) error {
	p.applied = c
	return nil
}
func (p *countingPlane) Counters(context.Context) (plane.Snapshot, error) {
	s := plane.Snapshot{Epoch: p.epoch}
	for _, c := range p.counts {
		s.Counters = append(s.Counters, c)
	}
	return s, nil
}

// TestUsageAcrossFailedUpgrade: after a failed upgrade a new reconcile loop
// resumes on the running plane without counting committed bytes twice, its
// marks land in the plane's own counters, and what the old loop never read
// is what an old process hands over.
func TestUsageAcrossFailedUpgrade(t *testing.T) {
	ctx := context.Background()
	inner := &countingPlane{epoch: "e1", counts: map[string]plane.Counter{"k": {ID: "k", Rx: 100, Tx: 50}}}
	p := trackUsage([]plane.Plane{inner})[0].(*usagePlane)
	if _, err := p.Counters(ctx); err != nil { // the old loop's last reading, committed
		t.Fatal(err)
	}
	inner.counts["k"] = plane.Counter{ID: "k", Rx: 150, Tx: 60}
	r := p.resumed()
	snap, _ := r.Counters(ctx)
	if snap.Epoch == "e1" || len(snap.Counters) != 1 || snap.Counters[0].Rx != 50 || snap.Counters[0].Tx != 10 {
		t.Fatalf("resumed reading %+v, want only the 50+10 bytes not yet committed", snap)
	}
	r.Apply(ctx, []plane.Credential{{ID: "k", Mark: 60, MarkEpoch: snap.Epoch}, {ID: "new", MarkEpoch: ""}})
	if a := inner.applied; a[0].Mark != 150+60 || a[0].MarkEpoch != "e1" || a[1].Mark != 0 || a[1].MarkEpoch != "e1" {
		t.Fatalf("applied %+v", a)
	}
	inner.counts["k"] = plane.Counter{ID: "k", Rx: 200, Tx: 80}
	d := unaccounted(ctx, []plane.Plane{r}, nil)
	if len(d) != 1 || d[0].Rx != 50 || d[0].Tx != 20 {
		t.Fatalf("handed over %+v, want 50+20 bytes", d)
	}
}
