package store

import (
	"fmt"
	"time"

	"github.com/usipipo/usipipo/store/model"
)

// UsageDelta is bytes a node counted for one credential in one interval.
type UsageDelta struct {
	ID       string    `json:"id"`
	Proxy    bool      `json:"proxy,omitempty"` // an MTProto secret, not a key
	Rx       uint64    `json:"rx"`
	Tx       uint64    `json:"tx"`
	LastSeen time.Time `json:"last_seen,omitzero"`
}

// UsageBatch brings one interval of one node's usage into the domain state.
// Each credential's counter for that node only grows by the recorded deltas,
// so a data-plane restart or another key's reset never moves it. A
// credential that reaches its data cap with no throttle speed is suspended
// here, deterministically, from the counters the batch produced. The same
// (node, interval) is applied once.
type UsageBatch struct {
	Node   string       `json:"node"`
	Start  time.Time    `json:"start"`
	End    time.Time    `json:"end"`
	Deltas []UsageDelta `json:"deltas"`
}

// Kind implements Command.
func (UsageBatch) Kind() string { return "usage.batch/1" }

// redacted keeps the audit trail small: one line per interval, not per key.
func (c UsageBatch) redacted() any {
	return struct {
		Node   string    `json:"node"`
		Start  time.Time `json:"start"`
		End    time.Time `json:"end"`
		Deltas int       `json:"deltas"`
	}{c.Node, c.Start, c.End, len(c.Deltas)}
}

var keyUsageMark = []byte("usage_mark/")

func (c UsageBatch) plan(v *view, m Meta) (mutation, error) {
	if c.Node == "" || !c.End.After(c.Start) {
		return nil, fmt.Errorf("usage batch needs a node and an interval: %w", model.ErrInvalid)
	}
	mark := append(append([]byte(nil), keyUsageMark...), c.Node...)
	if last := v.bucket(bMeta).Get(mark); last != nil && !time.Unix(0, int64(decodeU64(last))).Before(c.End) {
		return nil, fmt.Errorf("usage of %s up to %s already recorded: %w", c.Node, c.End.Format(time.RFC3339), model.ErrExists)
	}
	return func(w *writer) error {
		for _, d := range c.Deltas {
			if err := applyDelta(w, c.Node, d); err != nil {
				return err
			}
		}
		return w.tx.Bucket(bMeta).Put(mark, u64(uint64(c.End.UnixNano())))
	}, nil
}

func applyDelta(w *writer, node string, d UsageDelta) error {
	if d.Proxy {
		p, err := getByID(&w.view, proxies, d.ID)
		if err != nil {
			return nil // unknown credentials are skipped, as every node would
		}
		p.Usage = addUsage(p.Usage, node, d)
		if p.Status == model.KeyActive && overCap(p.Limits, p.PeriodUsage()) {
			p.Status, p.Reason = model.KeySuspended, ReasonDataCap
		}
		return put(w, proxies, p)
	}
	k, err := getByID(&w.view, keys, d.ID)
	if err != nil {
		return nil
	}
	k.Usage = addUsage(k.Usage, node, d)
	if k.Status == model.KeyActive && overCap(k.Limits, k.PeriodUsage()) {
		k.Status, k.Reason = model.KeySuspended, ReasonDataCap
	}
	return put(w, keys, k)
}

func addUsage(u model.Usage, node string, d UsageDelta) model.Usage {
	if u == nil {
		u = model.Usage{}
	}
	c := u[node]
	c.Rx += d.Rx
	c.Tx += d.Tx
	if d.LastSeen.After(c.LastSeen) {
		c.LastSeen = d.LastSeen
	}
	u[node] = c
	return u
}

func overCap(l model.Limits, used uint64) bool {
	return l.DataCap > 0 && l.ThrottleBps == 0 && used >= l.DataCap
}
