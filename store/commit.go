package store

import (
	"fmt"

	"context"
	bolt "go.etcd.io/bbolt"
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

// commitLoop starts a transaction as soon as the previous commit (and its
// fsync) ended, and keeps taking newly queued commands into it while it
// applies, so the group size follows the load with no timer.
func (s *Store) commitLoop(ctx context.Context, max int) {
	defer close(s.done)
	for {
		select {
		case r := <-s.queue:
			s.commit([]*request{r}, max, true)
		case <-ctx.Done():
			s.drain(max)
			return
		}
	}
}

// drain commits what was queued before Close so no accepted request is
// left without an answer.
func (s *Store) drain(max int) {
	for {
		select {
		case r := <-s.queue:
			s.commit([]*request{r}, max, true)
		default:
			return
		}
	}
}

// take appends queued requests to batch, without waiting, up to max.
func (s *Store) take(batch []*request, max int) []*request {
	for len(batch) < max {
		select {
		case r := <-s.queue:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// commit applies batch in one transaction and answers every request once
// the commit is durable. With more, requests queued meanwhile join the
// transaction until the queue is empty or it holds max.
func (s *Store) commit(batch []*request, max int, more bool) {
	var errs []error
	start := time.Now()
	err := s.db.Update(func(tx *bolt.Tx) error {
		w := newWriter(tx)
		errs = errs[:0]
		for i := 0; i < len(batch); i++ {
			refused, err := applyOne(w, batch[i].op)
			if err != nil {
				return err
			}
			errs = append(errs, refused)
			if more && i == len(batch)-1 {
				batch = s.take(batch, max)
			}
		}
		return nil
	})
	s.m.commit.UpdateDuration(start)
	s.m.batch.Update(float64(len(batch)))
	if err != nil && len(batch) > 1 {
		// One command's storage failure must not take its group down with
		// it: apply each alone, so only the failing one is refused.
		for _, r := range batch {
			s.commit([]*request{r}, 1, false)
		}
		return
	}
	if err == nil && slices.ContainsFunc(errs, func(e error) bool { return e == nil }) {
		select {
		case s.changes <- struct{}{}:
		default:
		}
	}
	for i, r := range batch {
		switch {
		case err != nil:
			s.m.failed.Inc()
			r.done <- fmt.Errorf("applying %s: %w", r.op.Cmd.Kind(), err)
		case errs[i] != nil:
			s.m.rejected.Inc()
			r.done <- errs[i]
		default:
			s.m.applied.Inc()
			r.done <- nil
		}
	}
	if err != nil {
		s.log.Error("commit_failed", "commands", len(batch), "error", err.Error())
	}
}
