package app

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app/plane"
	"github.com/usipipo/usipipo/store/model"
)

// memPlane is a data plane that moves no packets: traffic is added by the
// test, and it enforces budgets the way a real plane must.
type memPlane struct {
	mu      sync.Mutex
	epoch   string
	creds   map[string]plane.Credential
	counts  map[string]plane.Counter
	applied chan struct{}
}

func newMemPlane() *memPlane {
	return &memPlane{epoch: "e1", creds: map[string]plane.Credential{}, counts: map[string]plane.Counter{}, applied: make(chan struct{}, 100)}
}

func (p *memPlane) Name() string           { return "mem" }
func (p *memPlane) Types() []model.KeyType { return []model.KeyType{model.WireGuard, model.Outline} }

func (p *memPlane) Apply(_ context.Context, creds []plane.Credential) error {
	p.mu.Lock()
	p.creds = map[string]plane.Credential{}
	for _, c := range creds {
		p.creds[c.ID] = c
	}
	p.mu.Unlock()
	p.applied <- struct{}{}
	return nil
}

func (p *memPlane) Counters(context.Context) (plane.Snapshot, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := plane.Snapshot{Epoch: p.epoch}
	for _, c := range p.counts {
		s.Counters = append(s.Counters, c)
	}
	return s, nil
}

// traffic moves n bytes for a credential if it is installed and within its
// budget, and reports whether it passed.
func (p *memPlane) traffic(id string, n uint64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.creds[id]
	if !ok {
		return false
	}
	cnt := p.counts[id]
	mark := c.Mark
	if c.MarkEpoch != p.epoch {
		mark = 0
	}
	if c.Budget != plane.NoBudget && cnt.Rx+cnt.Tx-mark+n > c.Budget {
		return false
	}
	cnt.ID, cnt.Rx = id, cnt.Rx+n
	p.counts[id] = cnt
	return true
}

func (p *memPlane) restart() {
	p.mu.Lock()
	p.epoch = fmt.Sprintf("%s+", p.epoch)
	p.counts = map[string]plane.Counter{}
	p.mu.Unlock()
}

func (p *memPlane) has(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.creds[id]
	return ok
}

// waitFor waits for the plane to be handed a set in which cond holds.
func (p *memPlane) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(2 * time.Second) // the promise: a change reaches the planes within 2 s
	for !cond() {
		select {
		case <-p.applied:
		case <-deadline:
			t.Fatalf("plane did not get %s within 2 s", what)
		}
	}
}

func TestReconcilerInstallsChangesWithinTwoSeconds(t *testing.T) {
	n := newTestNode(t)
	p := newMemPlane()
	r := NewReconciler(ReconcilerOptions{Service: n.svc, Planes: []plane.Plane{p}, UsageInterval: time.Hour})
	c, cancel := context.WithCancel(ctx())
	done := make(chan error)
	go func() { done <- r.Run(c) }()
	defer func() { cancel(); <-done }()
	<-r.Ready()

	u, _ := n.svc.RegisterUser(ctx(), ActorCLI, NewUser{TelegramID: 1})
	k, err := n.svc.CreateKey(ctx(), ActorCLI, KeyRequest{UserID: u.ID, Type: model.WireGuard, Admin: true})
	if err != nil {
		t.Fatal(err)
	}
	p.waitFor(t, "the new key", func() bool { return p.has(k.ID) })
	if err := n.svc.Ban(ctx(), ActorCLI, u.ID, "abuse"); err != nil {
		t.Fatal(err)
	}
	p.waitFor(t, "the ban", func() bool { return !p.has(k.ID) })
	n.svc.Unban(ctx(), ActorCLI, u.ID)
	p.waitFor(t, "the unban", func() bool { return p.has(k.ID) })
	n.svc.SetKeyStatus(ctx(), ActorCLI, k.ID, model.KeyRevoked, "")
	p.waitFor(t, "the revocation", func() bool { return !p.has(k.ID) })
}

func TestUsageSurvivesPlaneRestartAndCapIsEnforced(t *testing.T) {
	n := newTestNode(t)
	p := newMemPlane()
	r := NewReconciler(ReconcilerOptions{Service: n.svc, Planes: []plane.Plane{p}})
	u, _ := n.svc.RegisterUser(ctx(), ActorCLI, NewUser{TelegramID: 1})
	k, _ := n.svc.CreateKey(ctx(), ActorCLI, KeyRequest{UserID: u.ID, Type: model.WireGuard, Admin: true,
		Limits: model.Limits{DataCap: 1000}})
	other, _ := n.svc.CreateKey(ctx(), ActorCLI, KeyRequest{UserID: u.ID, Type: model.Outline, Admin: true})
	r.Sync(ctx())
	step := func() { n.clock.Add(10 * time.Second); r.Sync(ctx()) }

	if !p.traffic(k.ID, 500) || !p.traffic(other.ID, 7) {
		t.Fatal("traffic refused under budget")
	}
	step()
	if got, _ := n.st.Key(k.ID); got.Usage.Total() != 500 {
		t.Fatalf("usage %d, want 500", got.Usage.Total())
	}
	p.restart() // counters back to zero: nothing may revert or jump
	p.traffic(k.ID, 100)
	step()
	step() // an idle interval adds nothing
	if got, _ := n.st.Key(k.ID); got.Usage.Total() != 600 {
		t.Fatalf("after plane restart usage %d, want 600", got.Usage.Total())
	}
	if got, _ := n.st.Key(other.ID); got.Usage.Total() != 7 {
		t.Fatalf("other key's usage moved to %d", got.Usage.Total())
	}
	// 400 bytes of budget left, enforced by the plane without any write.
	if p.traffic(k.ID, 401) {
		t.Fatal("plane let the cap be crossed")
	}
	if !p.traffic(k.ID, 400) {
		t.Fatal("plane refused bytes within the budget")
	}
	step()
	got, _ := n.st.Key(k.ID)
	if got.Status != model.KeySuspended || got.Usage.Total() != 1000 {
		t.Fatalf("at the cap: %s, %d bytes", got.Status, got.Usage.Total())
	}
	if p.has(k.ID) {
		t.Fatal("suspended key still installed")
	}
	series, err := n.st.UsageSeries(k.ID)
	if err != nil || len(series) != 1 || series[0].Rx != 1000 {
		t.Fatalf("hourly telemetry %+v %v", series, err)
	}
}

func TestExpiredKeysAreNotInstalled(t *testing.T) {
	n := newTestNode(t)
	p := newMemPlane()
	r := NewReconciler(ReconcilerOptions{Service: n.svc, Planes: []plane.Plane{p}})
	u, _ := n.svc.RegisterUser(ctx(), ActorCLI, NewUser{TelegramID: 1})
	k, _ := n.svc.CreateKey(ctx(), ActorCLI, KeyRequest{UserID: u.ID, Type: model.Outline, Trial: true})
	r.Sync(ctx())
	if !p.has(k.ID) {
		t.Fatal("trial not installed")
	}
	n.clock.Add(4 * 24 * time.Hour)
	r.Sync(ctx())
	if p.has(k.ID) {
		t.Fatal("expired trial still installed")
	}
	r.expire(ctx())
	if got, _ := n.st.Key(k.ID); got.Status != model.KeyExpired {
		t.Fatalf("status %s after the sweep", got.Status)
	}
}
