package app

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app/plane"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// counterPlane reports fixed counters for n credentials and installs nothing:
// it isolates the reconcile loop's own cost.
type counterPlane struct {
	counts []plane.Counter
	step   uint64
}

func (p *counterPlane) Name() string           { return "bench" }
func (p *counterPlane) Types() []model.KeyType { return []model.KeyType{model.WireGuard} }
func (p *counterPlane) Apply(context.Context, []plane.Credential) error {
	return nil
}

func (p *counterPlane) Counters(context.Context) (plane.Snapshot, error) {
	p.step += 1000
	for i := range p.counts {
		p.counts[i].Rx, p.counts[i].Tx = p.step, p.step/2
	}
	return plane.Snapshot{Epoch: "e", Counters: p.counts}, nil
}

// benchKeys creates n users with one active WireGuard key each, in groups.
func benchKeys(b *testing.B, n *testNode, count int) []string {
	b.Helper()
	ids := make([]string, 0, count)
	for start := 0; start < count; start += 1000 {
		var ops []store.Op
		m := n.svc.meta(ActorSystem)
		for i := start; i < min(start+1000, count); i++ {
			uid, _ := n.svc.newID(m.At)
			kid, _ := n.svc.newID(m.At)
			ops = append(ops, store.Op{Meta: m, Cmd: store.CreateUser{ID: uid, TelegramID: int64(i + 1), UserKey: model.Sealed("k"),
				Language: "es", ReferralCode: fmt.Sprintf("c%d", i)}})
			sealed, _ := n.svc.seal(recKey, kid, []byte(`{"private":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","psk":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}`))
			ops = append(ops, store.Op{Meta: m, Cmd: store.CreateKey{ID: kid, UserID: uid, Type: model.WireGuard, Node: "n1",
				Grant: store.ByAdmin, Secret: sealed, Public: "pub"}})
			ids = append(ids, kid)
		}
		errs, err := n.st.ApplyBatch(ops)
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range errs {
			if e != nil {
				b.Fatal(e)
			}
		}
	}
	return ids
}

// BenchmarkUsageIngest10k is one usage interval for 10,000 active
// credentials that all moved bytes: read counters, commit one UsageBatch and
// the hourly telemetry, rebuild and push the desired set. At a 10 s interval
// the node spends ns/op / 10 s of one core on it.
func BenchmarkUsageIngest10k(b *testing.B) {
	n := newTestNode(b)
	ids := benchKeys(b, n, 10_000)
	p := &counterPlane{}
	for _, id := range ids {
		p.counts = append(p.counts, plane.Counter{ID: id})
	}
	r := NewReconciler(ReconcilerOptions{Service: n.svc, Planes: []plane.Plane{p}})
	r.Sync(context.Background())
	b.ResetTimer()
	for b.Loop() {
		n.clock.Add(10 * time.Second)
		r.Sync(context.Background())
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e10*100, "%core@10s")
}

// BenchmarkDesiredSet10k builds the desired set of 10,000 active keys:
// cold, as at start-up (every record decoded, every secret opened), and
// warm, as every reconcile after a change (only changed versions decoded).
func BenchmarkDesiredSet10k(b *testing.B) {
	for _, warm := range []bool{false, true} {
		b.Run(fmt.Sprintf("warm=%v", warm), func(b *testing.B) {
			n := newTestNode(b)
			benchKeys(b, n, 10_000)
			n.svc.cache = nil // cold means nothing cached anywhere
			r := NewReconciler(ReconcilerOptions{Service: n.svc, Planes: []plane.Plane{&counterPlane{}}})
			if warm {
				r.desired(r.planes[0])
			}
			b.ResetTimer()
			for b.Loop() {
				if !warm {
					clear(r.known)
				}
				creds, err := r.desired(r.planes[0])
				if err != nil || len(creds) != 10_000 {
					b.Fatal(len(creds), err)
				}
			}
		})
	}
}

// BenchmarkKeyConfig compares a cached client config with rendering it
// (open the sealed secret, render the wg-quick file) on every call.
func BenchmarkKeyConfig(b *testing.B) {
	for _, cached := range []bool{true, false} {
		b.Run(fmt.Sprintf("cached=%v", cached), func(b *testing.B) {
			n := newTestNode(b)
			if !cached {
				n.svc.cache = nil
			}
			u, _ := n.svc.RegisterUser(ctx(), ActorCLI, NewUser{TelegramID: 1})
			k, err := n.svc.CreateKey(ctx(), ActorCLI, KeyRequest{UserID: u.ID, Type: model.WireGuard, Admin: true})
			if err != nil {
				b.Fatal(err)
			}
			n.svc.KeyConfig(ctx(), k.ID)
			if n.svc.cache != nil {
				n.svc.cache.Wait()
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := n.svc.KeyConfig(ctx(), k.ID); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkKeyQR compares a cached QR code PNG with rendering it.
func BenchmarkKeyQR(b *testing.B) {
	for _, cached := range []bool{true, false} {
		b.Run(fmt.Sprintf("cached=%v", cached), func(b *testing.B) {
			n := newTestNode(b)
			if !cached {
				n.svc.cache = nil
			}
			u, _ := n.svc.RegisterUser(ctx(), ActorCLI, NewUser{TelegramID: 1})
			k, _ := n.svc.CreateKey(ctx(), ActorCLI, KeyRequest{UserID: u.ID, Type: model.WireGuard, Admin: true})
			conf, _ := n.svc.KeyConfig(ctx(), k.ID)
			n.svc.QR(ctx(), conf, k.Version)
			if n.svc.cache != nil {
				n.svc.cache.Wait()
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := n.svc.QR(ctx(), conf, k.Version); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
