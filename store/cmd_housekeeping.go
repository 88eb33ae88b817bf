package store

import (
	"bytes"
	"fmt"
	"time"

	"github.com/usipipo/usipipo/store/model"
)

// Housekeep forgets replicated bookkeeping nobody needs any more: idempotency
// keys recorded before OnceBefore, and the per-day trial counters of days
// before TrialDaysBefore's UTC day. It never touches the trial guard's
// erased/ records, which must outlive erasure. Once values written before
// entries had a time are dated with the command's own time instead (so they
// go one retention later; their real age is unknown and a young one may
// still be retried). At most Max entries are deleted or dated, so one command
// stays a bounded transaction; the caller repeats while HousekeepingDue finds
// more. The cutoffs travel in the command, so every node of a cluster
// forgets the same entries.
type Housekeep struct {
	OnceBefore      time.Time `json:"once_before"`
	TrialDaysBefore time.Time `json:"trial_days_before"`
	Max             int       `json:"max"`
}

// Kind implements Command.
func (Housekeep) Kind() string { return "housekeeping.prune/1" }

// TrialDayRetention is how long per-day trial counters are kept by default:
// only today's is read (the daily budget); a week leaves room for reports.
const TrialDayRetention = 7 * 24 * time.Hour

// minOnceAge is the youngest an idempotency key may be when it is pruned,
// whatever the command says: a wrong cutoff must not reopen a retry window.
const minOnceAge = 24 * time.Hour

func (c Housekeep) plan(v *view, m Meta) (mutation, error) {
	if c.OnceBefore.IsZero() || c.TrialDaysBefore.IsZero() || c.Max <= 0 || c.Max > 100_000 {
		return nil, fmt.Errorf("housekeeping needs two cutoffs and a batch of 1..100000: %w", model.ErrInvalid)
	}
	if c.OnceBefore.After(m.At.Add(-minOnceAge)) {
		return nil, fmt.Errorf("idempotency keys are kept at least %v: %w", minOnceAge, model.ErrInvalid)
	}
	if bytes.Compare(guardDayKey(c.TrialDaysBefore), guardDayKey(m.At)) > 0 {
		return nil, fmt.Errorf("today's trial count is never pruned: %w", model.ErrInvalid)
	}
	due := housekeepingScan(v, c.OnceBefore, c.TrialDaysBefore, c.Max)
	return func(w *writer) error {
		ob, gb := w.tx.Bucket(bOnce), w.tx.Bucket(bTrialGuard)
		for _, k := range due.onceOld {
			if err := ob.Delete(k); err != nil {
				return fmt.Errorf("pruning idempotency key: %w", err)
			}
		}
		for _, e := range due.onceUndated {
			if err := ob.Put(e[0], onceValue(m.At, string(e[1]))); err != nil {
				return fmt.Errorf("dating idempotency key: %w", err)
			}
		}
		for _, k := range due.days {
			if err := gb.Delete(k); err != nil {
				return fmt.Errorf("pruning trial day: %w", err)
			}
		}
		return nil
	}, nil
}

// housekeepingDue is what a Housekeep with the same cutoffs would change,
// copied out of the transaction.
type housekeepingDue struct {
	onceOld     [][]byte    // keys recorded before the cutoff
	onceUndated [][2][]byte // key, value (the bare ref) of entries without a time
	days        [][]byte    // trial_guard day/ keys before the cutoff day
}

func (d *housekeepingDue) len() int { return len(d.onceOld) + len(d.onceUndated) + len(d.days) }

// housekeepingScan collects up to limit entries due. The once bucket is in
// key order, not time order, so it is read whole (a read of every key, once
// a day); trial days are in date order, so only the old ones are read.
func housekeepingScan(v *view, onceBefore, daysBefore time.Time, limit int) *housekeepingDue {
	d := &housekeepingDue{}
	cur := v.bucket(bOnce).Cursor()
	for k, b := cur.First(); k != nil && d.len() < limit; k, b = cur.Next() {
		at, dated, err := onceTime(b)
		switch {
		case err != nil:
			continue // Check reports it; pruning must not fail on it
		case !dated:
			d.onceUndated = append(d.onceUndated, [2][]byte{bytes.Clone(k), bytes.Clone(b)})
		case at.Before(onceBefore):
			d.onceOld = append(d.onceOld, bytes.Clone(k))
		}
	}
	prefix, end := str("day/"), guardDayKey(daysBefore)
	gc := v.bucket(bTrialGuard).Cursor()
	for k, _ := gc.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && bytes.Compare(k, end) < 0 && d.len() < limit; k, _ = gc.Next() {
		d.days = append(d.days, bytes.Clone(k))
	}
	return d
}

// HousekeepingDue counts what a Housekeep with these cutoffs would delete or
// date, up to limit, so a caller issues the command only when it has work
// (writing nothing, not even an audit line, on a quiet day).
func (s *Store) HousekeepingDue(onceBefore, trialDaysBefore time.Time, limit int) (int, error) {
	var n int
	err := s.read(func(v *view) error {
		n = housekeepingScan(v, onceBefore, trialDaysBefore, limit).len()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("housekeeping: %w", err)
	}
	return n, nil
}
