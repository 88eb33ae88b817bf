package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/usipipo/usipipo/store/model"
)

// checkBookkeeping verifies the keyed records that have no table of their
// own: every idempotency key is bounded and its value decodes (dated or
// from before entries had a time), and the trial guard holds only erased/
// records (a valid hash and a sorted list of distinct trial types) and
// day/ counters (a real date and an 8-byte count).
func checkBookkeeping(tx *bolt.Tx) error {
	err := tx.Bucket(bOnce).ForEach(func(k, v []byte) error {
		if len(k) == 0 || len(k) > maxOnceKey {
			return fmt.Errorf("idempotency key of %d bytes", len(k))
		}
		if _, _, _, err := decodeOnce(v); err != nil {
			return fmt.Errorf("idempotency key %q: %w", k, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("once: %w", err)
	}
	err = tx.Bucket(bTrialGuard).ForEach(func(k, v []byte) error {
		switch {
		case bytes.HasPrefix(k, []byte("erased/")):
			return checkGuardRecord(string(k[len("erased/"):]), v)
		case bytes.HasPrefix(k, []byte("day/")):
			day := string(k[len("day/"):])
			if _, err := time.Parse(time.DateOnly, day); err != nil || len(v) != 8 {
				return fmt.Errorf("trial day %q: %d-byte count, date error %v", day, len(v), err)
			}
			return nil
		}
		return fmt.Errorf("unknown record %q", k)
	})
	if err != nil {
		return fmt.Errorf("trial guard: %w", err)
	}
	return nil
}

func checkGuardRecord(hash string, v []byte) error {
	if hash == "" || !validGuard(hash) {
		return fmt.Errorf("erased record under a malformed hash %q", hash)
	}
	var used []model.KeyType
	if err := json.Unmarshal(v, &used); err != nil {
		return fmt.Errorf("erased record %s: %w", hash, err)
	}
	for i, t := range used {
		if !t.Valid() || i > 0 && used[i-1] >= t {
			return fmt.Errorf("erased record %s: trials %v not sorted distinct types", hash, used)
		}
	}
	return nil
}
