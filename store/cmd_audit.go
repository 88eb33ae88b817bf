package store

import (
	"fmt"
	"time"

	"github.com/usipipo/usipipo/store/model"
)

// PruneAudit deletes audit entries recorded before Before, oldest first, at
// most Max of them (so one command stays a bounded transaction; the caller
// repeats while it prunes a full batch). It is a domain command like any
// other, so every node of a cluster forgets the same entries, and the prune
// itself is audited.
type PruneAudit struct {
	Before time.Time `json:"before"`
	Max    int       `json:"max"`
}

// Kind implements Command.
func (PruneAudit) Kind() string { return "audit.prune/1" }

// AuditRetention is how long audit entries are kept by default.
const AuditRetention = 90 * 24 * time.Hour

func (c PruneAudit) plan(v *view, m Meta) (mutation, error) {
	if c.Before.IsZero() || c.Max <= 0 || c.Max > 100_000 {
		return nil, fmt.Errorf("prune needs a time and a batch of 1..100000: %w", model.ErrInvalid)
	}
	var old []*model.AuditEntry
	cur := v.bucket(bAudit).Cursor()
	for k, b := cur.First(); k != nil && len(old) < c.Max; k, b = cur.Next() {
		e, err := load(v, audit, b)
		if err != nil {
			return nil, err
		}
		if !e.At.Before(c.Before) {
			break // entries are in sequence, which is time order
		}
		old = append(old, e)
	}
	return func(w *writer) error {
		for _, e := range old {
			if err := remove(w, audit, e); err != nil {
				return err
			}
		}
		return nil
	}, nil
}

// remove deletes a record and its index entries.
func remove[T any](w *writer, t *table[T], rec *T) error {
	for _, ix := range t.indexes {
		if err := moveEntries(w.tx.Bucket(ix.bucket), ix, rec, nil); err != nil {
			return err
		}
	}
	if err := w.tx.Bucket(t.bucket).Delete(t.key(rec)); err != nil {
		return fmt.Errorf("deleting %s record: %w", t.bucket, err)
	}
	return nil
}
