package app

import (
	"context"
	"fmt"

	"github.com/usipipo/usipipo/store"
)

// housekeepBatch bounds one housekeeping command (one write transaction).
const housekeepBatch = 10_000

// Housekeep forgets idempotency keys older than store.OnceRetention and
// per-day trial counters older than store.TrialDayRetention, in bounded
// batches, until none is due; it writes nothing (not even an audit line) on
// a day with nothing to forget. It returns how many entries it deleted or
// dated. The node calls it daily.
func (s *Service) Housekeep(ctx context.Context) (int, error) {
	m := s.meta(ActorSystem)
	cmd := store.Housekeep{OnceBefore: m.At.Add(-store.OnceRetention),
		TrialDaysBefore: m.At.Add(-store.TrialDayRetention), Max: housekeepBatch}
	total, last := 0, housekeepBatch+1
	for ctx.Err() == nil {
		due, err := s.st.HousekeepingDue(cmd.OnceBefore, cmd.TrialDaysBefore, housekeepBatch)
		if err != nil {
			return total, err
		}
		if due == 0 {
			return total, nil
		}
		if last < housekeepBatch {
			// The last command took a partial batch, so all that was due:
			// something re-adds what is pruned; stop rather than spin.
			return total, fmt.Errorf("housekeeping: %d entries still due after pruning", due)
		}
		last = due
		if err := s.do(ctx, m, cmd, ""); err != nil {
			return total, fmt.Errorf("housekeeping: %w", err)
		}
		total += due
	}
	return total, ctx.Err()
}
