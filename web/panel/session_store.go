package panel

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/usipipo/usipipo/store"
)

// Logged-in sessions are written through to the node-local telemetry
// bucket store.PanelSessions, so a restart does not log admins out. The
// record is keyed by the SHA-256 of the cookie and holds who is logged in
// and when: never the cookie, never the CSRF token (derived from the
// cookie, see csrfFor), never a pending TOTP seed or a flash message, which
// stay in memory. Login forms' sessions are not written at all.

// touchEvery is how stale a record's last-seen time may get: one write per
// session per minute at most, and a session restored after a restart may
// end up to this much before its idle limit.
const touchEvery = time.Minute

// pruneEvery is how often create sweeps expired sessions out of memory and
// the store.
const pruneEvery = 10 * time.Minute

// sessionRecord is a session as stored.
type sessionRecord struct {
	Admin      string    `json:"a"`
	Created    time.Time `json:"c"`
	LastSeen   time.Time `json:"l"`
	MustChange bool      `json:"m,omitempty"`
	Stamp      string    `json:"s,omitempty"` // the login's credential stamp
}

func recordKey(k [32]byte) string { return hex.EncodeToString(k[:]) }

// csrfFor derives a session's CSRF token from its cookie token: a restored
// session keeps the token its open forms carry without storing it, and the
// token reveals nothing about the cookie.
func csrfFor(tok string) string {
	m := hmac.New(sha256.New, []byte(tok))
	m.Write([]byte("usipipo panel csrf v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// load reads the stored sessions into memory, deleting expired and
// unreadable records.
func (s *sessions) load() error {
	if s.st == nil {
		return nil
	}
	now := s.now()
	gone := map[string][]byte{}
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.st.ScanTelemetry(store.PanelSessions, "", func(k, v []byte) bool {
		var rec sessionRecord
		h, herr := hex.DecodeString(string(k))
		if herr != nil || len(h) != 32 || json.Unmarshal(v, &rec) != nil || rec.Admin == "" {
			gone[string(k)] = nil
			return true
		}
		ss := &session{key: [32]byte(h), admin: rec.Admin, created: rec.Created, lastSeen: rec.LastSeen,
			stored: rec.LastSeen, mustChange: rec.MustChange, stamp: rec.Stamp}
		if s.expired(ss, now) {
			gone[string(k)] = nil
			return true
		}
		s.m[ss.key] = ss
		return true
	})
	if err != nil {
		return fmt.Errorf("loading panel sessions: %w", err)
	}
	s.pruned = now
	return s.deleteRecords(gone)
}

// save writes a logged-in session's record.
func (s *sessions) save(ss *session) error {
	if s.st == nil || ss.admin == "" {
		return nil
	}
	v, err := json.Marshal(sessionRecord{Admin: ss.admin, Created: ss.created, LastSeen: ss.lastSeen, MustChange: ss.mustChange,
		Stamp: ss.stamp})
	if err != nil {
		return err
	}
	if err := s.st.PutTelemetryBatch(store.PanelSessions, map[string][]byte{recordKey(ss.key): v}); err != nil {
		return fmt.Errorf("saving a panel session: %w", err)
	}
	return nil
}

// deleteRecords deletes stored sessions (values must be nil).
func (s *sessions) deleteRecords(gone map[string][]byte) error {
	if s.st == nil || len(gone) == 0 {
		return nil
	}
	if err := s.st.PutTelemetry(store.PanelSessions, gone); err != nil {
		return fmt.Errorf("deleting panel sessions: %w", err)
	}
	return nil
}

// pruneLocked drops expired sessions from memory and returns the store
// records to delete.
func (s *sessions) pruneLocked(now time.Time) map[string][]byte {
	gone := map[string][]byte{}
	for k, ss := range s.m {
		if s.expired(ss, now) {
			delete(s.m, k)
			if ss.admin != "" {
				gone[recordKey(k)] = nil
			}
		}
	}
	s.pruned = now
	return gone
}
