package store

import (
	"context"
	"slices"
	"time"
)

type request struct {
	op   Op
	done chan error
}

// Do applies one command durably: it returns after the transaction holding
// it has been committed and fsynced, with the command's own domain error if
// it was rejected. Concurrent callers share transactions (group commit).
func (s *Store) Do(ctx context.Context, m Meta, cmd Command) error {
	return s.DoOps(ctx, []Op{{Meta: m, Cmd: cmd}})[0]
}

// DoOps applies several commands in order; they are committed together in
// one transaction, each accepted or rejected alone.
func (s *Store) DoOps(ctx context.Context, ops []Op) []error {
	errs := make([]error, len(ops))
	reqs := make([]*request, len(ops))
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		for i := range errs {
			errs[i] = ErrClosed
		}
		return errs
	}
	for i, op := range ops {
		reqs[i] = &request{op: op, done: make(chan error, 1)}
		s.queue <- reqs[i]
	}
	s.mu.RUnlock()
	for i, r := range reqs {
		// A cancelled caller stops waiting, but its command may still commit:
		// it was queued and will be applied, and the audit trail says so.
		select {
		case errs[i] = <-r.done:
		case <-ctx.Done():
			errs[i] = ctx.Err()
		}
	}
	return errs
}

// commitLoop takes whatever is queued as soon as the previous commit (and
// its fsync) ends, so the group size adapts to the load with no timer.
func (s *Store) commitLoop(ctx context.Context, max int) {
	defer close(s.done)
	batch := make([]*request, 0, max)
	for {
		batch = batch[:0]
		select {
		case r := <-s.queue:
			batch = append(batch, r)
		case <-ctx.Done():
			s.drain(batch)
			return
		}
	fill:
		for len(batch) < max {
			select {
			case r := <-s.queue:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		s.commit(batch)
	}
}

// drain commits what was queued before Close so no accepted request is
// left without an answer.
func (s *Store) drain(batch []*request) {
	for {
		select {
		case r := <-s.queue:
			batch = append(batch, r)
		default:
			if len(batch) > 0 {
				s.commit(batch)
			}
			return
		}
	}
}

func (s *Store) commit(batch []*request) {
	ops := make([]Op, len(batch))
	for i, r := range batch {
		ops[i] = r.op
	}
	start := time.Now()
	errs, err := s.ApplyBatch(ops)
	s.m.commit.UpdateDuration(start)
	s.m.batch.Update(float64(len(batch)))
	if err != nil && len(batch) > 1 {
		// One command's storage failure must not take its group down with
		// it: apply each alone, so only the failing one is refused.
		for _, r := range batch {
			s.commit([]*request{r})
		}
		return
	}
	for i, r := range batch {
		switch {
		case err != nil:
			s.m.failed.Inc()
			r.done <- err
		case errs[i] != nil:
			s.m.rejected.Inc()
			r.done <- errs[i]
		default:
			s.m.applied.Inc()
			r.done <- nil
		}
	}
	if err == nil && len(errs) > 0 && slices.ContainsFunc(errs, func(e error) bool { return e == nil }) {
		select {
		case s.changes <- struct{}{}:
		default:
		}
	}
	if err != nil {
		s.log.Error("commit_failed", "commands", len(batch), "error", err.Error())
	}
}
