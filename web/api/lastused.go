package api

import (
	"encoding/binary"
	"log/slog"
	"sync"
	"time"

	"github.com/usipipo/usipipo/store"
)

// lastUsed keeps when each API key was last used and writes the times to
// the store's node-local telemetry (store.LastUsed, "apikey:<id>" → unix
// seconds, 8 bytes big-endian) at most once per flushEvery, from the
// request that finds the interval over; one write at a time.
type lastUsed struct {
	st    *store.Store
	log   *slog.Logger
	every time.Duration

	mu       sync.Mutex
	pending  map[string]int64
	lastSave time.Time
	saving   bool
}

const flushEvery = time.Minute

// LastUsedKey is the telemetry key of an API key's last use.
func LastUsedKey(apiKeyID string) string { return "apikey:" + apiKeyID }

func (l *lastUsed) touch(id string, now time.Time) {
	l.mu.Lock()
	if l.pending == nil {
		l.pending = map[string]int64{}
		l.lastSave = now
	}
	l.pending[id] = now.Unix()
	if l.saving || now.Sub(l.lastSave) < l.every {
		l.mu.Unlock()
		return
	}
	batch := l.pending
	l.pending, l.lastSave, l.saving = map[string]int64{}, now, true
	l.mu.Unlock()
	go l.save(batch)
}

func (l *lastUsed) save(batch map[string]int64) {
	vals := make(map[string][]byte, len(batch))
	for id, t := range batch {
		b := make([]byte, 8)
		binary.BigEndian.PutUint64(b, uint64(t))
		vals[LastUsedKey(id)] = b
	}
	if err := l.st.PutTelemetry(store.LastUsed, vals); err != nil {
		l.log.Warn("api_last_used_not_saved", "error", err.Error(), "keys", len(vals))
	}
	l.mu.Lock()
	l.saving = false
	l.mu.Unlock()
}
