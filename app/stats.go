package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/usipipo/usipipo/store/cache"
	"github.com/usipipo/usipipo/store/model"
)

// DayStat is one UTC day of the dashboard's series.
type DayStat struct {
	Day             string `json:"day"` // YYYY-MM-DD, UTC
	RevenueStars    int64  `json:"revenue_stars"`
	RevenueUSDCents int64  `json:"revenue_usd_cents"`
	BytesIn         uint64 `json:"bytes_in"`  // received from clients, all credentials
	BytesOut        uint64 `json:"bytes_out"` // sent to clients
	NewUsers        int    `json:"new_users"`
}

// Stats is the node's dashboard summary. ActiveUsers are users with at
// least one active key or MTProto secret.
type Stats struct {
	Users         int                   `json:"users"`
	ActiveUsers   int                   `json:"active_users"`
	ActiveKeys    map[model.KeyType]int `json:"active_keys"`
	ActiveProxies int                   `json:"active_proxies"`
	Days          []DayStat             `json:"days"`
}

// MaxStatsDays bounds the series a Stats call may ask for.
const MaxStatsDays = 366

// statsFreshness is how long a computed summary is served from the cache.
// Stats aggregate many records, so no single record version can key them;
// the key is the time slot instead, and a dashboard lags writes by at most
// this much.
const statsFreshness = 30 * time.Second

// paymentLookBack is how long before a day a payment paid on that day may
// have been created: invoices expire within hours, so a week covers every
// late settlement without scanning older payments.
const paymentLookBack = 7 * 24 * time.Hour

// Stats returns the summary with a series of the last `days` UTC days
// (today included), oldest first.
func (s *Service) Stats(ctx context.Context, days int) (*Stats, error) {
	if days < 1 || days > MaxStatsDays {
		return nil, fmt.Errorf("stats days %d must be 1..%d: %w", days, MaxStatsDays, model.ErrInvalid)
	}
	now := s.now().UTC()
	slot := uint64(now.UnixNano() / int64(statsFreshness))
	k := cache.Key{Kind: "stats", ID: fmt.Sprint(days), Version: slot}
	st, err := cache.GetOrCompute(ctx, s.cache, k, cache.Users, func() (*Stats, int64, error) {
		st, err := s.computeStats(now, days)
		if err != nil {
			return nil, 0, err
		}
		return st, int64(len(st.Days))*64 + 256, nil
	})
	if err != nil {
		return nil, err
	}
	c := *st // callers get their own map and slice
	c.ActiveKeys = make(map[model.KeyType]int, len(st.ActiveKeys))
	for t, n := range st.ActiveKeys {
		c.ActiveKeys[t] = n
	}
	c.Days = append([]DayStat(nil), st.Days...)
	return &c, nil
}

func (s *Service) computeStats(now time.Time, days int) (*Stats, error) {
	out := &Stats{ActiveKeys: map[model.KeyType]int{model.WireGuard: 0, model.Outline: 0}}
	var err error
	if out.Users, err = s.st.CountUsers(); err != nil {
		return nil, fmt.Errorf("counting users: %w", err)
	}
	active := map[string]bool{}
	if err := s.countActiveKeys(out.ActiveKeys, active); err != nil {
		return nil, err
	}
	if err := s.st.EachActiveVersion(true, func(userID, _ string, _ uint64) error {
		out.ActiveProxies++
		active[userID] = true
		return nil
	}); err != nil {
		return nil, fmt.Errorf("counting active proxies: %w", err)
	}
	out.ActiveUsers = len(active)

	first := now.Truncate(24*time.Hour).AddDate(0, 0, -(days - 1))
	out.Days = make([]DayStat, days)
	index := map[string]*DayStat{}
	for i := range out.Days {
		out.Days[i].Day = first.AddDate(0, 0, i).Format(time.DateOnly)
		index[out.Days[i].Day] = &out.Days[i]
	}
	day := func(t time.Time) *DayStat { return index[t.UTC().Format(time.DateOnly)] }
	if err := s.st.EachUserSince(first, func(_ string, at time.Time) error {
		if d := day(at); d != nil {
			d.NewUsers++
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("counting new users: %w", err)
	}
	if err := s.st.EachPaymentSince(first.Add(-paymentLookBack), func(p *model.Payment) error {
		d := day(p.PaidAt)
		if p.Status != model.PayPaid || p.PaidAt.IsZero() || d == nil {
			return nil
		}
		switch p.Currency {
		case "XTR":
			d.RevenueStars += p.Amount
		case "USD":
			d.RevenueUSDCents += p.Amount
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("summing revenue: %w", err)
	}
	points, err := s.st.NodeUsageSince(first)
	if err != nil {
		return nil, fmt.Errorf("reading traffic: %w", err)
	}
	for _, p := range points {
		if d := day(p.At); d != nil {
			d.BytesIn += p.Rx
			d.BytesOut += p.Tx
		}
	}
	return out, nil
}

// countActiveKeys counts active keys per protocol from the active-key
// index: a key's protocol comes from the cache by key id and version, and
// only keys not seen at their current version are decoded.
func (s *Service) countActiveKeys(perType map[model.KeyType]int, users map[string]bool) error {
	var missed []string
	err := s.st.EachActiveVersion(false, func(userID, id string, version uint64) error {
		users[userID] = true
		if t, ok := cache.Get[model.KeyType](s.cache, cache.Key{Kind: "key-type", ID: id, Version: version}); ok {
			perType[t]++
			return nil
		}
		missed = append(missed, id)
		return nil
	})
	if err != nil {
		return fmt.Errorf("counting active keys: %w", err)
	}
	// Decoded after the index walk: bbolt read transactions should not nest.
	for _, id := range missed {
		k, err := s.st.Key(id)
		if errors.Is(err, model.ErrNotFound) {
			continue // gone since the walk
		}
		if err != nil {
			return fmt.Errorf("counting active keys: %w", err)
		}
		perType[k.Type]++
		cache.Set(s.cache, cache.Key{Kind: "key-type", ID: k.ID, Version: k.Version}, k.Type, int64(len(k.Type)), cache.Static)
	}
	return nil
}
