package pay

import (
	"context"
	"maps"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// revenueCache holds today's and all-time revenue per currency for
// /metrics. A scrape reads the cached figures; they are recomputed from
// Revenue only when a settlement or refund of this node touched them, the
// UTC day turned, or they are revenueMaxAge old (a payment applied by
// another path or node) — and never more often than revenueMinAge, so a
// burst of payments costs one scan, not one per payment or per scrape.
type revenueCache struct {
	mu       sync.Mutex
	dirty    bool
	computed time.Time
	day      string
	today    map[string]int64
	total    map[string]int64
}

const (
	revenueMinAge = 5 * time.Second
	revenueMaxAge = 10 * time.Minute
)

// touch marks the figures stale after a settlement or refund.
func (c *revenueCache) touch() {
	c.mu.Lock()
	c.dirty = true
	c.mu.Unlock()
}

// RevenueFigures are today's (UTC) and all-time revenue per currency, in
// the records' units (Stars; US cents).
type RevenueFigures struct {
	Day   string           `json:"day"`
	Today map[string]int64 `json:"today"`
	Total map[string]int64 `json:"total"`
}

// RevenueNow returns today's and all-time revenue, from the cache when it
// is fresh.
func (s *Service) RevenueNow(ctx context.Context) (RevenueFigures, error) {
	c := &s.rev
	c.mu.Lock()
	defer c.mu.Unlock()
	now := s.now().UTC()
	day := now.Format(time.DateOnly)
	age := now.Sub(c.computed)
	fresh := c.today != nil && c.day == day && age < revenueMaxAge && (!c.dirty || age < revenueMinAge)
	if !fresh {
		all, err := s.Revenue(ctx, time.Time{}, now.Add(time.Hour))
		if err != nil {
			return RevenueFigures{}, err
		}
		c.today, c.total = map[string]int64{}, map[string]int64{}
		for d, byCur := range all {
			for cur, amount := range byCur {
				c.total[cur] += amount
				if d == day {
					c.today[cur] += amount
				}
			}
		}
		c.day, c.computed, c.dirty = day, now, false
	}
	return RevenueFigures{Day: c.day, Today: maps.Clone(c.today), Total: maps.Clone(c.total)}, nil
}

// RegisterMetrics adds the revenue gauges to set:
// usipipo_revenue_today{currency} (this UTC day) and
// usipipo_revenue_total{currency} (all time), in whole units of the
// currency — Stars for XTR, dollars for USD. Refunded payments are not
// revenue. Also usipipo_payment_failures_total{provider,reason}
// (failmetrics.go). Registering again (a restarted part) keeps the gauges.
func (s *Service) RegisterMetrics(set *metrics.Set) {
	s.registerFailureMetrics(set)
	for _, cur := range []string{XTR, USD} {
		div := 1.0
		if cur == USD {
			div = 100 // records hold cents
		}
		read := func(total bool) func() float64 {
			return func() float64 {
				f, err := s.RevenueNow(context.Background())
				if err != nil {
					s.log.Error("revenue_metrics_failed", "service", "pay", "details", err.Error())
					return 0
				}
				if total {
					return float64(f.Total[cur]) / div
				}
				return float64(f.Today[cur]) / div
			}
		}
		set.GetOrCreateGauge(`usipipo_revenue_today{currency="`+cur+`"}`, read(false))
		set.GetOrCreateGauge(`usipipo_revenue_total{currency="`+cur+`"}`, read(true))
	}
}
