package pay

import (
	"context"
	"errors"
	"time"
)

// Schedule is how often RunJobs does each periodic job; zero fields take
// the defaults.
type Schedule struct {
	ReconcileStars time.Duration // default 10 min (and once at start)
	SweepQvaPay    time.Duration // default 1 min
	ExpireStars    time.Duration // default 5 min
	CheckLedger    time.Duration // default 24 h
}

func (sc *Schedule) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&sc.ReconcileStars, 10*time.Minute)
	def(&sc.SweepQvaPay, time.Minute)
	def(&sc.ExpireStars, 5*time.Minute)
	def(&sc.CheckLedger, 24*time.Hour)
}

// RunJobs runs the periodic payment jobs until ctx ends: Stars
// reconciliation (at once, then periodically), the QvaPay sweep, the expiry
// of stale Stars invoices and the ledger check. Jobs whose provider is not
// configured are skipped. It returns when ctx ends.
func (s *Service) RunJobs(ctx context.Context, sc Schedule) {
	sc.defaults()
	type job struct {
		every time.Duration
		run   func(context.Context) error
		name  string
	}
	jobs := []job{
		{sc.ReconcileStars, func(c context.Context) error { _, err := s.ReconcileStars(c); return err }, "reconcile_stars"},
		{sc.SweepQvaPay, func(c context.Context) error { _, err := s.SweepQvaPay(c); return err }, "sweep_qvapay"},
		{sc.ExpireStars, func(c context.Context) error { _, err := s.ExpireStars(c); return err }, "expire_stars"},
		{sc.CheckLedger, func(c context.Context) error { _, err := s.CheckLedger(c); return err }, "check_ledger"},
	}
	next := make([]time.Time, len(jobs))
	now := time.Now()
	for i, j := range jobs {
		next[i] = now.Add(j.every)
	}
	next[0] = now // reconcile at start: payments may have come while the node was down
	for {
		soonest := next[0]
		for _, t := range next[1:] {
			if t.Before(soonest) {
				soonest = t
			}
		}
		timer := time.NewTimer(time.Until(soonest))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		for i, j := range jobs {
			if time.Now().Before(next[i]) {
				continue
			}
			next[i] = time.Now().Add(j.every)
			c, cancel := context.WithTimeout(ctx, min(j.every, 5*time.Minute))
			if err := j.run(c); err != nil && !isNotConfigured(err) {
				s.log.Warn(j.name, "service", "pay", "action", j.name, "details", err.Error())
			}
			cancel()
		}
	}
}

func isNotConfigured(err error) bool {
	return err != nil && errors.Is(err, ErrNoProvider)
}
