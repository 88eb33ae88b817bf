package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/usipipo/usipipo/store/model"
)

// bTrialGuard keeps what must outlive an erased account to stop trial abuse,
// and the node-wide count of trials granted per UTC day:
//
//	erased/<keyed hash of a Telegram id> → JSON list of the trials it used
//	day/<YYYY-MM-DD>                     → trials granted that day (uint64)
//
// The hash is keyed by the service layer (HMAC under a key derived from the
// data key), so the bucket names no one without that key.
var bTrialGuard = []byte("trial_guard")

func guardErasedKey(hash string) []byte { return str("erased/" + hash) }
func guardDayKey(at time.Time) []byte   { return str("day/" + at.UTC().Format(time.DateOnly)) }

// ErrTrialBudget refuses a trial once the node's daily trial budget is spent.
var ErrTrialBudget = fmt.Errorf("today's free trials are all given out: %w", model.ErrTrialDisabled)

// validGuard checks a trial-guard hash: 64 lowercase hex digits, or empty.
func validGuard(h string) bool {
	if h == "" {
		return true
	}
	if len(h) != 64 {
		return false
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// guardedTrials is the list of trials an erased account with this hash used.
func guardedTrials(v *view, hash string) ([]model.KeyType, error) {
	if hash == "" {
		return nil, nil
	}
	b := v.bucket(bTrialGuard).Get(guardErasedKey(hash))
	if b == nil {
		return nil, nil
	}
	var out []model.KeyType
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("trial guard record: %w", err)
	}
	return out, nil
}

// rememberTrials adds an erased account's used trials to its guard record.
func rememberTrials(w *writer, hash string, used []model.KeyType) error {
	if hash == "" || len(used) == 0 {
		return nil
	}
	all, err := guardedTrials(&w.view, hash)
	if err != nil {
		return err
	}
	for _, t := range used {
		if !slices.Contains(all, t) {
			all = append(all, t)
		}
	}
	slices.Sort(all) // the same bytes on every node, whatever the order of use
	b, err := json.Marshal(all)
	if err != nil {
		return err
	}
	return w.tx.Bucket(bTrialGuard).Put(guardErasedKey(hash), b)
}

// trialsToday is the number of trials granted on m.At's UTC day.
func trialsToday(v *view, at time.Time) uint64 {
	b := v.bucket(bTrialGuard).Get(guardDayKey(at))
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// trialDay checks the daily budget (0: none) for one more trial and returns
// the mutation that counts it. Every trial is counted, budget or not, so a
// budget switched on mid-day sees the day's real count.
func trialDay(v *view, m Meta, budget int) (mutation, error) {
	if budget < 0 {
		return nil, fmt.Errorf("trial budget %d: %w", budget, model.ErrInvalid)
	}
	n := trialsToday(v, m.At)
	if budget > 0 && n >= uint64(budget) {
		return nil, fmt.Errorf("%d of %d: %w", n, budget, ErrTrialBudget)
	}
	return func(w *writer) error {
		return w.tx.Bucket(bTrialGuard).Put(guardDayKey(m.At), u64(n+1))
	}, nil
}

// trialCount is trialDay for trial grants and a no-op for the others.
func trialCount(v *view, m Meta, g Grant, budget int) (mutation, error) {
	if g != ByTrial {
		return func(*writer) error { return nil }, nil
	}
	return trialDay(v, m, budget)
}

// TrialsToday reports how many trials were granted on at's UTC day.
func (s *Store) TrialsToday(at time.Time) (uint64, error) {
	var n uint64
	err := s.read(func(v *view) error {
		n = trialsToday(v, at)
		return nil
	})
	return n, err
}
