package egress

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/usipipo/usipipo/internal/testclock"
)

// newClock is an injectable Options.Now.
func newClock() *testclock.Clock { return testclock.New(time.Unix(1_700_000_000, 0)) }

var public = netip.MustParseAddrPort("8.8.8.8:443")

func TestRateLimitPerCredential(t *testing.T) {
	clk := newClock()
	set := metrics.NewSet()
	d := newDialer(t, Options{FlowsPerSecond: 2, FlowBurst: 3, Now: clk.Now, Metrics: set})

	for i := 0; i < 3; i++ {
		if err := d.CheckFor("alice", public); err != nil {
			t.Fatalf("alice flow %d: %v", i, err)
		}
	}
	if err := d.CheckFor("alice", public); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("alice past her burst: %v", err)
	}
	// Another credential has its own bucket.
	for i := 0; i < 3; i++ {
		if err := d.CheckFor("bob", public); err != nil {
			t.Fatalf("bob flow %d: %v", i, err)
		}
	}
	// Half a second refills one token at 2/s.
	clk.Add(500 * time.Millisecond)
	if err := d.CheckFor("alice", public); err != nil {
		t.Fatalf("alice after refill: %v", err)
	}
	if err := d.CheckFor("alice", public); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("alice after one refill: %v", err)
	}
	// A refused destination still spends a token: the limit is on attempts.
	clk.Add(500 * time.Millisecond)
	if err := d.CheckFor("alice", netip.MustParseAddrPort("10.0.0.1:80")); !errors.Is(err, ErrDenied) {
		t.Fatalf("private destination: %v", err)
	}
	if err := d.CheckFor("alice", public); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("after a refused flow: %v", err)
	}
	// DialFor shares the same budget.
	if _, err := d.DialFor(context.Background(), "alice", "tcp", "10.0.0.1:80"); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("DialFor over budget: %v", err)
	}

	var b strings.Builder
	set.WritePrometheus(&b)
	for _, want := range []string{
		`usipipo_egress_refused_total{reason="ratelimit"} 4`,
		`usipipo_egress_refused_total{reason="private"} 1`,
		`usipipo_egress_flows_total 7`,
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, b.String())
		}
	}
}

func TestRateLimitDefaultsAndOff(t *testing.T) {
	clk := newClock()
	d := newDialer(t, Options{Now: clk.Now})
	for i := 0; i < DefaultFlowBurst; i++ {
		if err := d.CheckFor("c", public); err != nil {
			t.Fatalf("flow %d of the default burst: %v", i, err)
		}
	}
	if err := d.CheckFor("c", public); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("past the default burst: %v", err)
	}
	clk.Add(time.Second)
	for i := 0; i < DefaultFlowsPerSecond; i++ {
		if err := d.CheckFor("c", public); err != nil {
			t.Fatalf("flow %d of the default rate: %v", i, err)
		}
	}

	off := newDialer(t, Options{FlowsPerSecond: -1, Now: clk.Now})
	for i := 0; i < 10*DefaultFlowBurst; i++ {
		if err := off.CheckFor("c", public); err != nil {
			t.Fatalf("unlimited flow %d: %v", i, err)
		}
	}
}

func TestRateLimitMemoryBounded(t *testing.T) {
	clk := newClock()
	d := newDialer(t, Options{FlowsPerSecond: 10, FlowBurst: 20, MaxTracked: 100, Now: clk.Now})
	f := d.flows
	if f.idle != 2*time.Second {
		t.Fatalf("refill time %v, want 2s", f.idle)
	}

	// The cap holds however many credentials show up.
	for i := 0; i < 1000; i++ {
		d.CheckFor(fmt.Sprint("cred", i), public)
	}
	if n := f.tracked(); n != 100 {
		t.Fatalf("%d buckets tracked, want the cap of 100", n)
	}

	// Idle buckets (full again) are dropped by the next use of any bucket.
	clk.Add(2 * time.Second)
	d.CheckFor("fresh", public)
	if n := f.tracked(); n != 1 {
		t.Fatalf("%d buckets after all went idle, want 1", n)
	}

	// A recently used bucket is kept and keeps its debt.
	for i := 0; i < 20; i++ {
		d.CheckFor("busy", public)
	}
	clk.Add(time.Second)
	d.CheckFor("other", public)
	if n := f.tracked(); n != 3 {
		t.Fatalf("%d buckets, want fresh, busy and other", n)
	}
	for i := 0; i < 10; i++ {
		if err := d.CheckFor("busy", public); err != nil {
			t.Fatalf("busy after 1s refill, flow %d: %v", i, err)
		}
	}
	if err := d.CheckFor("busy", public); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("busy bucket forgot its debt: %v", err)
	}
}

func TestRateLimitConcurrent(t *testing.T) {
	clk := newClock()
	d := newDialer(t, Options{FlowsPerSecond: 1, FlowBurst: 100, MaxTracked: 8, Now: clk.Now})
	var wg sync.WaitGroup
	var mu sync.Mutex
	granted := 0
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				if d.CheckFor("shared", public) == nil {
					mu.Lock()
					granted++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if granted != 100 {
		t.Fatalf("%d flows granted from a burst of 100", granted)
	}
}
