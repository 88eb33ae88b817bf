package notify

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// Status changes are found by comparing the active-credential indexes (id
// and record version, read without decoding a record) with the set the
// previous scan saw: only credentials that left or joined the set are read.
// The audit trail would not do — a data cap suspends inside a usage batch,
// which is audited as one line per interval — and neither would a record
// version watermark, which renames and limit changes move too.
const (
	ckActive    = "notify/active/"
	ckSuspended = "notify/suspended/"
	ckStatusSet = "notify/status_init"
)

func (s *scanner) load() error {
	if s.loaded {
		return nil
	}
	s.active, s.suspended = map[string]uint64{}, map[string]bool{}
	err := s.n.st.ScanTelemetry(store.Checkpoints, ckActive, func(k, v []byte) bool {
		ver, _ := strconv.ParseUint(string(v), 10, 64)
		s.active[string(k[len(ckActive):])] = ver
		return true
	})
	if err == nil {
		err = s.n.st.ScanTelemetry(store.Checkpoints, ckSuspended, func(k, _ []byte) bool {
			s.suspended[string(k[len(ckSuspended):])] = true
			return true
		})
	}
	if err != nil {
		return fmt.Errorf("status checkpoints: %w", err)
	}
	s.loaded = true
	return nil
}

// status tells users about their credentials suspended and restored since
// the last scan. The first scan of a node only records the current set.
func (s *scanner) status(ctx context.Context) error {
	if err := s.load(); err != nil {
		return err
	}
	cur := map[string]uint64{}
	for _, proxies := range []bool{false, true} {
		err := s.n.st.EachActiveVersion(proxies, func(_, id string, v uint64) error { cur[id] = v; return nil })
		if err != nil {
			return fmt.Errorf("active credentials: %w", err)
		}
	}
	puts := map[string][]byte{}
	seeded, err := s.n.st.GetTelemetry(store.Checkpoints, ckStatusSet)
	if err != nil {
		return err
	}
	if seeded == nil {
		for id, v := range cur {
			s.active[id] = v
			puts[ckActive+id] = []byte(strconv.FormatUint(v, 10))
		}
		puts[ckStatusSet] = []byte("1")
		return s.n.st.PutTelemetry(store.Checkpoints, puts)
	}
	var errs []error
	for id := range s.active {
		if _, ok := cur[id]; ok || ctx.Err() != nil {
			continue
		}
		if err := s.left(ctx, id, puts); err != nil {
			errs = append(errs, err)
		}
	}
	for id, v := range cur {
		if _, ok := s.active[id]; ok || ctx.Err() != nil {
			continue
		}
		if err := s.joined(ctx, id, v, puts); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.n.st.PutTelemetry(store.Checkpoints, puts); err != nil {
		errs = append(errs, fmt.Errorf("status checkpoints: %w", err))
	}
	return ignoreNotSent(errors.Join(errs...))
}

// left handles a credential no longer active: a suspension is told (a cap
// cut-off as the 100% notice, so a throttled and a cut-off key read alike);
// revoked, expired or deleted ones are only forgotten. On errNotSent the
// credential stays in the set, so the next scan tries again.
func (s *scanner) left(ctx context.Context, id string, puts map[string][]byte) error {
	c, err := s.loadCred(id)
	if err != nil && !errors.Is(err, model.ErrNotFound) {
		return err
	}
	if err == nil && c.status == model.KeySuspended {
		if err := s.n.notifyUser(ctx, s.suspendNote(c)); err != nil {
			return err
		}
		s.suspended[id] = true
		puts[ckSuspended+id] = []byte("1")
	}
	delete(s.active, id)
	puts[ckActive+id] = nil
	return nil
}

func (s *scanner) suspendNote(c cred) note {
	if c.reason == store.ReasonDataCap && c.limits.DataCap > 0 {
		return capNote(c)
	}
	reason := "reason_other"
	switch c.reason {
	case store.ReasonDataCap:
		reason = "reason_data_cap"
	case store.ReasonRefunded, store.ReasonSlotsRefunded:
		reason = "reason_refunded"
	}
	u, _ := s.n.st.User(c.userID)
	lang := ""
	if u != nil {
		lang = u.Language
	}
	return note{userID: c.userID, kind: kindSuspended, subject: c.id, threshold: strconv.FormatUint(c.version, 10),
		args: []string{"key", c.name, "reason", s.n.cat.text(lang, reason)}}
}

// joined handles a credential that became active: new ones are recorded,
// ones seen suspended are told they are restored.
func (s *scanner) joined(ctx context.Context, id string, v uint64, puts map[string][]byte) error {
	if s.suspended[id] {
		c, err := s.loadCred(id)
		if err != nil {
			return err
		}
		err = s.n.notifyUser(ctx, note{userID: c.userID, kind: kindRestored, subject: id,
			threshold: strconv.FormatUint(v, 10), args: []string{"key", c.name}})
		if err != nil {
			return err
		}
		delete(s.suspended, id)
		puts[ckSuspended+id] = nil
	}
	s.active[id] = v
	puts[ckActive+id] = []byte(strconv.FormatUint(v, 10))
	return nil
}
