package notify

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// Reminder lead times before a credential's expires_at.
const (
	remindEarly = 72 * time.Hour
	remindLate  = 24 * time.Hour
)

// Message kinds (catalogue ids) of user notifications.
const (
	kindExpiry3d  = "expiry_3d"
	kindExpiry1d  = "expiry_1d"
	kindCap80     = "cap_80"
	kindCap100    = "cap_100"
	kindSuspended = "key_suspended"
	kindRestored  = "key_restored"
)

// maxDue bounds the credentials one expiry scan looks at; the rest are
// found by the next scan.
const maxDue = 10_000

// scanner finds due notifications. It is used by Run's goroutine only.
type scanner struct {
	n *Notifier
	// The last active set seen (credential id → record version) and the
	// credentials seen suspended, mirrored in Checkpoints telemetry so that a
	// restart compares with what the previous run saw.
	active    map[string]uint64
	suspended map[string]bool
	loaded    bool
}

func newScanner(n *Notifier) *scanner { return &scanner{n: n} }

// scan runs every check once; one failing check does not stop the others.
func (s *scanner) scan(ctx context.Context) error {
	now := s.n.now().UTC()
	return errors.Join(
		s.expiry(ctx, now),
		s.caps(ctx),
		s.status(ctx),
		s.forgetRevoked(ctx),
		s.n.scanAudit(ctx),
		s.n.dailyReport(ctx, now),
		s.n.sendBackup(ctx, now),
		s.n.pruneBroadcasts(ctx, now),
	)
}

// cred is what notifications need of a key or an MTProto secret.
type cred struct {
	id, userID, name string
	status           model.KeyStatus
	reason           string
	version          uint64
	limits           model.Limits
	used, base       uint64
	created          time.Time
}

func keyCred(k *model.Key) cred {
	return cred{id: k.ID, userID: k.UserID, name: k.Name, status: k.Status, reason: k.Reason, version: k.Version,
		limits: k.Limits, used: k.PeriodUsage(), base: k.CapBase, created: k.Created}
}

func proxyCred(p *model.Proxy) cred {
	return cred{id: p.ID, userID: p.UserID, name: "MTProto", status: p.Status, reason: p.Reason, version: p.Version,
		limits: p.Limits, used: p.PeriodUsage(), base: p.CapBase, created: p.Created}
}

// loadCred reads a key or, failing that, an MTProto secret (ids are unique
// across both).
func (s *scanner) loadCred(id string) (cred, error) {
	k, err := s.n.st.Key(id)
	if err == nil {
		return keyCred(k), nil
	}
	if !errors.Is(err, model.ErrNotFound) {
		return cred{}, err
	}
	p, err := s.n.st.Proxy(id)
	if err != nil {
		return cred{}, err
	}
	return proxyCred(p), nil
}

// expiry reminds of keys through the expiry index (active keys by
// expires_at, so only those due within three days are read) and of MTProto
// secrets, which have no such index, during the caps pass.
func (s *scanner) expiry(ctx context.Context, now time.Time) error {
	ids, err := s.n.st.KeysExpiredAt(now.Add(remindEarly), maxDue)
	if err != nil {
		return fmt.Errorf("expiry index: %w", err)
	}
	var errs []error
	for _, id := range ids {
		if ctx.Err() != nil {
			return nil
		}
		k, err := s.n.st.Key(id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, s.remind(ctx, keyCred(k), now))
	}
	return ignoreNotSent(errors.Join(errs...))
}

// remind sends the reminder due for c at now, if any: the 3-day one while
// more than a day is left, the 1-day one after; none for a credential
// issued already inside the reminder's window. The threshold is the expiry
// itself, so a renewed credential is reminded again before its new expiry.
func (s *scanner) remind(ctx context.Context, c cred, now time.Time) error {
	exp := c.limits.ExpiresAt
	left := exp.Sub(now)
	if c.status != model.KeyActive || exp.IsZero() || left <= 0 || left > remindEarly {
		return nil
	}
	kind, lead := kindExpiry3d, remindEarly
	if left <= remindLate {
		kind, lead = kindExpiry1d, remindLate
	}
	if !c.created.Before(exp.Add(-lead)) {
		return nil // e.g. a one-day trial: "expires tomorrow" the moment it is issued would be noise
	}
	return s.n.notifyUser(ctx, note{userID: c.userID, kind: kind, subject: c.id,
		threshold: strconv.FormatInt(exp.Unix(), 10),
		args:      []string{"key", c.name, "date", exp.UTC().Format("2006-01-02 15:04 UTC")}})
}

// caps warns at 80% and 100% of a data cap, once per cap period (the
// threshold names the period's base and cap, so a reset or a bought data
// package arms them again). Keys a cap cuts off are suspended by the usage
// batch and told by status; throttled ones stay active and are told here.
func (s *scanner) caps(ctx context.Context) error {
	now := s.n.now().UTC()
	var due []cred
	err := s.n.st.EachActiveKey(func(k *model.Key) error {
		if k.Limits.DataCap > 0 && k.PeriodUsage()*100 >= k.Limits.DataCap*80 {
			due = append(due, keyCred(k))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("active keys: %w", err)
	}
	var proxies []cred
	err = s.n.st.EachActiveProxy(func(p *model.Proxy) error {
		proxies = append(proxies, proxyCred(p))
		return nil
	})
	if err != nil {
		return fmt.Errorf("active proxies: %w", err)
	}
	var errs []error
	for _, c := range proxies {
		if c.limits.DataCap > 0 && c.used*100 >= c.limits.DataCap*80 {
			due = append(due, c)
		}
		errs = append(errs, s.remind(ctx, c, now))
	}
	for _, c := range due {
		if ctx.Err() != nil {
			return nil
		}
		errs = append(errs, s.n.notifyUser(ctx, capNote(c)))
	}
	return ignoreNotSent(errors.Join(errs...))
}

// capNote is the 100% notice once the cap is used up, else the 80% one.
func capNote(c cred) note {
	kind, pct := kindCap80, c.used*100/max(c.limits.DataCap, 1)
	if c.used >= c.limits.DataCap {
		kind, pct = kindCap100, 100
	}
	return note{userID: c.userID, kind: kind, subject: c.id,
		threshold: strconv.FormatUint(c.base, 10) + "-" + strconv.FormatUint(c.limits.DataCap, 10),
		args: []string{"key", c.name, "percent", strconv.FormatUint(pct, 10),
			"used", humanBytes(c.used), "cap", humanBytes(c.limits.DataCap)}}
}

// ignoreNotSent drops errNotSent: what was not sent is found due again.
func ignoreNotSent(err error) error {
	if err == nil || errors.Is(err, errNotSent) && !hasOther(err) {
		return nil
	}
	return err
}

func hasOther(err error) bool {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if e != nil && hasOther(e) {
				return true
			}
		}
		return false
	}
	return !errors.Is(err, errNotSent)
}

func humanBytes(b uint64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.2f GB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(b)/(1<<20))
	}
	return fmt.Sprintf("%d KB", b>>10)
}

// forgetRevoked drops the suspended checkpoint of each credential seen
// suspended that is now revoked or gone: it can never be restored, so the
// entry would only grow the checkpoints (and be read at every start). One
// still suspended (or expired, which a renewal may bring back) keeps its
// entry, so a restoration is still told. It costs one record read per
// suspended credential a scan, as caps costs one per active key.
func (s *scanner) forgetRevoked(ctx context.Context) error {
	if err := s.load(); err != nil {
		return err
	}
	puts := map[string][]byte{}
	var errs []error
	for id := range s.suspended {
		if ctx.Err() != nil {
			break
		}
		c, err := s.loadCred(id)
		switch {
		case errors.Is(err, model.ErrNotFound):
		case err != nil:
			errs = append(errs, err)
			continue
		case c.status != model.KeyRevoked:
			continue
		}
		delete(s.suspended, id)
		puts[ckSuspended+id] = nil
	}
	if len(puts) > 0 {
		if err := s.n.st.PutTelemetry(store.Checkpoints, puts); err != nil {
			errs = append(errs, fmt.Errorf("status checkpoints: %w", err))
		}
	}
	return errors.Join(errs...)
}
