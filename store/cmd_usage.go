package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/usipipo/usipipo/store/model"
)

// UsageDelta is bytes a node counted for one credential (a key or an
// MTProto secret: ids are unique across both) in one interval.
type UsageDelta struct {
	ID       string    `json:"id"`
	Rx       uint64    `json:"rx"`
	Tx       uint64    `json:"tx"`
	LastSeen time.Time `json:"last_seen,omitzero"`
}

// UsageBatch brings one interval of one node's usage into the domain state.
// Each credential's counter for that node only grows by the recorded deltas,
// so a data-plane restart or another key's reset never moves it. Counters
// live in their own bucket, not in the credential records, so usage never
// changes a record's version. A credential that reaches its data cap with
// no throttle speed is suspended here, deterministically, from the counters
// the batch produced. The same (node, interval) is applied once.
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
	if c.Node == "" || !c.End.After(c.Start) || bytes.IndexByte(str(c.Node), sep) >= 0 {
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
	proxy := false
	caps := iKeysCap
	if w.bucket(bKeys).Get(str(d.ID)) == nil {
		if w.bucket(bProxies).Get(str(d.ID)) == nil {
			return nil // unknown credentials are skipped, as every node would
		}
		proxy, caps = true, iProxiesCap
	}
	ub := w.tx.Bucket(bUsage)
	k := compose(str(d.ID), str(node))
	c := decodeCounter(ub.Get(k))
	c.Rx += d.Rx
	c.Tx += d.Tx
	if d.LastSeen.After(c.LastSeen) {
		c.LastSeen = d.LastSeen
	}
	if err := ub.Put(k, encodeCounter(c)); err != nil {
		return fmt.Errorf("writing usage: %w", err)
	}
	capv := w.bucket(caps).Get(str(d.ID))
	if len(capv) != 16 {
		return nil
	}
	limit, base := binary.BigEndian.Uint64(capv[:8]), binary.BigEndian.Uint64(capv[8:])
	if w.usage(d.ID).Total() < base+limit {
		return nil
	}
	if proxy {
		p, err := getByID(&w.view, proxies, d.ID)
		if err != nil {
			return err
		}
		p.Status, p.Reason = model.KeySuspended, ReasonDataCap
		return put(w, proxies, p)
	}
	key, err := getByID(&w.view, keys, d.ID)
	if err != nil {
		return err
	}
	key.Status, key.Reason = model.KeySuspended, ReasonDataCap
	return put(w, keys, key)
}

// usage reads a credential's counters of every node.
func (v *view) usage(id string) model.Usage {
	prefix := userPrefix(id)
	var u model.Usage
	c := v.bucket(bUsage).Cursor()
	for k, val := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, val = c.Next() {
		if u == nil {
			u = model.Usage{}
		}
		u[string(k[len(prefix):])] = decodeCounter(val)
	}
	return u
}

func encodeCounter(c model.Counter) []byte {
	b := make([]byte, 24)
	binary.BigEndian.PutUint64(b[:8], c.Rx)
	binary.BigEndian.PutUint64(b[8:16], c.Tx)
	if !c.LastSeen.IsZero() {
		binary.BigEndian.PutUint64(b[16:], uint64(c.LastSeen.UnixNano()))
	}
	return b
}

func decodeCounter(b []byte) model.Counter {
	if len(b) != 24 {
		return model.Counter{}
	}
	c := model.Counter{Rx: binary.BigEndian.Uint64(b[:8]), Tx: binary.BigEndian.Uint64(b[8:16])}
	if ns := binary.BigEndian.Uint64(b[16:]); ns != 0 {
		c.LastSeen = time.Unix(0, int64(ns)).UTC()
	}
	return c
}
