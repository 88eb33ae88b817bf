package notify

import (
	"context"
	"fmt"
	"time"

	"github.com/usipipo/usipipo/store"
)

// receiptRetention is how long a finished broadcast keeps its
// per-recipient receipts; after that its counts are kept in its record and
// the receipts (one per recipient, the bulk of the notifier's data) go.
const receiptRetention = 30 * 24 * time.Hour

// pruneBatch bounds the receipts deleted in one transaction.
const pruneBatch = 1000

// pruneBroadcasts forgets the receipts of broadcasts finished more than
// receiptRetention ago. A finished broadcast is never sent again, so its
// receipts only served its Status.
func (n *Notifier) pruneBroadcasts(ctx context.Context, now time.Time) error {
	var old []string
	err := n.st.ScanTelemetry(store.Checkpoints, jobPrefix, func(k, _ []byte) bool {
		old = append(old, string(k[len(jobPrefix):]))
		return true
	})
	if err != nil {
		return err
	}
	for _, id := range old {
		if ctx.Err() != nil {
			return nil
		}
		if err := n.pruneOne(id, now); err != nil {
			return fmt.Errorf("pruning broadcast %s: %w", id, err)
		}
	}
	return nil
}

func (n *Notifier) pruneOne(id string, now time.Time) error {
	n.jobMu.Lock()
	defer n.jobMu.Unlock()
	j, err := n.getJob(id)
	if err != nil || j.Counts != nil || j.Finished.IsZero() || now.Sub(j.Finished) < receiptRetention ||
		(j.State != StateDone && j.State != StateCancelled) {
		return err
	}
	s, err := n.Status(id)
	if err != nil {
		return err
	}
	j.Counts = &counts{Sent: s.Sent, Blocked: s.Blocked, Failed: s.Failed, InFlight: s.InFlight}
	if err := n.putJob(j); err != nil {
		return err
	}
	for {
		del := map[string][]byte{}
		err := n.st.ScanTelemetry(store.Receipts, recipientKey(id, ""), func(k, _ []byte) bool {
			del[string(k)] = nil
			return len(del) < pruneBatch
		})
		if err != nil || len(del) == 0 {
			return err
		}
		if err := n.st.PutTelemetry(store.Receipts, del); err != nil {
			return err
		}
	}
}
