package cache

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
)

const (
	bytesGaugeName = "usipipo_cache_bytes"
	evictionsName  = "usipipo_cache_evictions_total"
	// maxKinds bounds the kind label; Kind is meant to be a code constant, so
	// reaching it means a caller put ids into Kind.
	maxKinds  = 32
	otherKind = "other"
)

// kindCounters are one kind's hit and miss counters. A nil *kindCounters
// (metrics off) counts nothing.
type kindCounters struct {
	hits   *metrics.Counter
	misses *metrics.Counter
}

func (k *kindCounters) hit() {
	if k != nil {
		k.hits.Inc()
	}
}

func (k *kindCounters) miss() {
	if k != nil {
		k.misses.Inc()
	}
}

// cacheMetrics resolves a kind to its counters without locks on the hot path:
// readers load an immutable map; the rare first use of a kind copies it.
type cacheMetrics struct {
	set       *metrics.Set
	evictions *metrics.Counter
	kinds     atomic.Pointer[map[string]*kindCounters]

	mu sync.Mutex // serialises copy-on-write updates of kinds
}

func newCacheMetrics(set *metrics.Set) *cacheMetrics {
	m := &cacheMetrics{
		set:       set,
		evictions: set.GetOrCreateCounter(evictionsName),
	}
	empty := map[string]*kindCounters{}
	m.kinds.Store(&empty)
	return m
}

// forKind returns the counters of kind, creating them on first use.
func (m *cacheMetrics) forKind(kind string) *kindCounters {
	if m == nil {
		return nil
	}
	if kc, ok := (*m.kinds.Load())[kind]; ok {
		return kc
	}
	return m.addKind(kind)
}

func (m *cacheMetrics) addKind(kind string) *kindCounters {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.kinds.Load()
	if kc, ok := old[kind]; ok {
		return kc
	}
	label := kindLabel(kind)
	if len(old) >= maxKinds {
		// Do not remember the overflow kind: the map stays bounded too.
		label = otherKind
		if kc, ok := old[otherKind]; ok {
			return kc
		}
		kind = otherKind
	}
	kc := &kindCounters{
		hits:   m.set.GetOrCreateCounter(`usipipo_cache_hits_total{kind="` + label + `"}`),
		misses: m.set.GetOrCreateCounter(`usipipo_cache_misses_total{kind="` + label + `"}`),
	}
	next := make(map[string]*kindCounters, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[kind] = kc
	m.kinds.Store(&next)
	return kc
}

// kindLabel makes kind safe as a label value: anything outside a small
// alphabet becomes '_', so no kind can break the exposition format or make
// the metrics library panic.
func kindLabel(kind string) string {
	if kind == "" {
		return "none"
	}
	const maxLen = 64
	if len(kind) > maxLen {
		kind = kind[:maxLen]
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9',
			r == '_', r == '-', r == '.', r == ':':
			return r
		default:
			return '_'
		}
	}, kind)
}
