package app

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/usipipo/usipipo/app/plane"
	"github.com/usipipo/usipipo/store/model"
)

// flakyPlane is a WireGuard-only memPlane whose Apply or Counters can be
// made to fail.
type flakyPlane struct {
	*memPlane
	failApply, failRead atomic.Bool
}

func (p *flakyPlane) Name() string           { return "flaky" }
func (p *flakyPlane) Types() []model.KeyType { return []model.KeyType{model.WireGuard} }

func (p *flakyPlane) Apply(ctx context.Context, creds []plane.Credential) error {
	if p.failApply.Load() {
		return errors.New("plane refused")
	}
	return p.memPlane.Apply(ctx, creds)
}

func (p *flakyPlane) Counters(ctx context.Context) (plane.Snapshot, error) {
	if p.failRead.Load() {
		return plane.Snapshot{}, errors.New("plane unreadable")
	}
	return p.memPlane.Counters(ctx)
}

// metricValues is one scrape of set as name{labels} → value.
func metricValues(set *metrics.Set) map[string]string {
	var b bytes.Buffer
	set.WritePrometheus(&b)
	out := map[string]string{}
	for _, l := range strings.Split(b.String(), "\n") {
		if i := strings.LastIndexByte(l, ' '); i > 0 && l[0] != '#' {
			out[l[:i]] = l[i+1:]
		}
	}
	return out
}

func TestPlaneStatusMetrics(t *testing.T) {
	n := newTestNode(t)
	mem := newMemPlane()
	flaky := &flakyPlane{memPlane: newMemPlane()}
	set := metrics.NewSet()
	r := NewReconciler(ReconcilerOptions{Service: n.svc, Planes: []plane.Plane{mem, flaky}, Metrics: set})
	want := func(step string, exp map[string]string) {
		t.Helper()
		got := metricValues(set)
		for k, v := range exp {
			if got[k] != v {
				t.Errorf("%s: %s = %q, want %s", step, k, got[k], v)
			}
		}
	}
	want("before the first push", map[string]string{`usipipo_plane_up{plane="mem"}`: "0", `usipipo_plane_up{plane="flaky"}`: "0",
		`usipipo_active_keys{plane="mem"}`: "0", `usipipo_node_active_users`: "0"})

	u1, _ := n.svc.RegisterUser(ctx(), ActorCLI, NewUser{TelegramID: 1})
	u2, _ := n.svc.RegisterUser(ctx(), ActorCLI, NewUser{TelegramID: 2})
	wg1, err := n.svc.CreateKey(ctx(), ActorCLI, KeyRequest{UserID: u1.ID, Type: model.WireGuard, Admin: true})
	if err != nil {
		t.Fatal(err)
	}
	n.svc.CreateKey(ctx(), ActorCLI, KeyRequest{UserID: u1.ID, Type: model.Outline, Admin: true})
	n.svc.CreateKey(ctx(), ActorCLI, KeyRequest{UserID: u2.ID, Type: model.Outline, Admin: true})
	step := func() { n.clock.Add(10 * time.Second); r.Sync(ctx()) }
	step()
	mem.mu.Lock()
	mem.counts[wg1.ID] = plane.Counter{ID: wg1.ID, Rx: 1, Conns: 3}
	mem.mu.Unlock()
	step()
	want("both planes working", map[string]string{
		`usipipo_plane_up{plane="mem"}`: "1", `usipipo_plane_up{plane="flaky"}`: "1",
		`usipipo_active_keys{plane="mem"}`: "3", `usipipo_active_users{plane="mem"}`: "2",
		`usipipo_active_keys{plane="flaky"}`: "1", `usipipo_active_users{plane="flaky"}`: "1",
		`usipipo_plane_connections{plane="mem"}`: "3", `usipipo_plane_connections{plane="flaky"}`: "0",
		`usipipo_node_active_users`: "2"})

	flaky.failApply.Store(true)
	step()
	want("flaky refuses its keys", map[string]string{`usipipo_plane_up{plane="mem"}`: "1", `usipipo_plane_up{plane="flaky"}`: "0",
		`usipipo_active_keys{plane="flaky"}`: "1", `usipipo_node_active_users`: "2"})
	flaky.failApply.Store(false)
	flaky.failRead.Store(true)
	step()
	want("flaky cannot be read", map[string]string{`usipipo_plane_up{plane="flaky"}`: "0"})
	flaky.failRead.Store(false)
	if err := n.svc.Ban(ctx(), ActorCLI, u2.ID, "abuse"); err != nil {
		t.Fatal(err)
	}
	step()
	want("recovered, one user banned", map[string]string{`usipipo_plane_up{plane="flaky"}`: "1",
		`usipipo_active_keys{plane="mem"}`: "2", `usipipo_active_users{plane="mem"}`: "1", `usipipo_node_active_users`: "1"})
}
