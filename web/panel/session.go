package panel

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"sort"
	"sync"
	"time"

	"github.com/usipipo/usipipo/store"
)

// Session limits.
const (
	DefaultIdle     = 30 * time.Minute // a session unused this long ends
	DefaultLifetime = 12 * time.Hour   // and every session ends this long after login
	maxSessions     = 10000            // beyond this the least recently used are dropped
	anonLifetime    = 15 * time.Minute // a login form's session
)

// session is one browser's state. The cookie carries a random token; the
// map is keyed by its SHA-256, so a heap dump shows no usable cookie.
// Logged-in sessions are also stored (session_store.go), so a restart
// does not log admins out.
type session struct {
	key      [32]byte
	admin    string // empty until the login succeeded
	csrf     string
	created  time.Time
	lastSeen time.Time
	stored   time.Time // the last-seen time the stored record holds
	// stamp is the login's credential stamp (app.Service.AdminStamp) when
	// it logged in: a session whose stamp is no longer the login's ends.
	stamp string
	// mustChange: the login used a one-time password and may only change it.
	mustChange bool
	// pendingSeed is a TOTP seed shown for enrolment, not yet confirmed.
	pendingSeed   []byte
	pendingSecret string
	pendingQR     []byte
	// flash is shown once on the next page (a created token, recovery codes).
	flash []string
}

// sessions is the session table, in memory and, for logged-in sessions,
// in the store.
type sessions struct {
	now            func() time.Time
	idle, lifetime time.Duration
	st             *store.Store // nil: memory only

	mu     sync.Mutex
	m      map[[32]byte]*session
	pruned time.Time // the last sweep of expired sessions
}

func newSessions(now func() time.Time, idle, lifetime time.Duration) *sessions {
	return &sessions{now: now, idle: idle, lifetime: lifetime, m: make(map[[32]byte]*session)}
}

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// create starts a session (anonymous when admin is empty) of a login whose
// credentials have stamp, and returns it with its cookie token.
func (s *sessions) create(admin string, mustChange bool, stamp string) (*session, string, error) {
	tok, err := randomToken()
	if err != nil {
		return nil, "", err
	}
	now := s.now()
	ss := &session{key: sha256.Sum256([]byte(tok)), admin: admin, csrf: csrfFor(tok), created: now, lastSeen: now,
		stored: now, mustChange: mustChange, stamp: stamp}
	// Stored before it exists in memory: a session the caller hands out
	// survives a restart.
	if err := s.save(ss); err != nil {
		return nil, "", err
	}
	s.mu.Lock()
	gone := map[string][]byte{}
	if now.Sub(s.pruned) >= pruneEvery {
		gone = s.pruneLocked(now)
	}
	if len(s.m) >= maxSessions {
		for k := range s.evictLocked(now) {
			gone[k] = nil
		}
	}
	s.m[ss.key] = ss
	c := *ss
	s.mu.Unlock()
	// A failed delete leaves records that expired anyway: load drops them.
	_ = s.deleteRecords(gone)
	return &c, tok, nil
}

// get returns the live session of a cookie token and marks it used, or
// nil. The caller must not keep the pointer beyond the request: fields are
// read and written under the table's lock through with.
func (s *sessions) get(tok string) *session {
	if tok == "" {
		return nil
	}
	k := sha256.Sum256([]byte(tok))
	now := s.now()
	s.mu.Lock()
	ss := s.m[k]
	if ss == nil {
		s.mu.Unlock()
		return nil
	}
	if s.expired(ss, now) {
		delete(s.m, k)
		s.mu.Unlock()
		_ = s.deleteRecords(map[string][]byte{recordKey(k): nil}) // or load drops it
		return nil
	}
	if ss.csrf == "" { // restored from the store
		ss.csrf = csrfFor(tok)
	}
	ss.lastSeen = now
	touch := ss.admin != "" && now.Sub(ss.stored) >= touchEvery
	if touch {
		ss.stored = now
	}
	c := *ss
	s.mu.Unlock()
	if touch && s.save(&c) != nil {
		// Retried on the next request; meanwhile a restart would see
		// the session as idle a little early, never late.
		s.with(k, func(ss *session) { ss.stored = time.Time{} })
	}
	return &c
}

// with runs f on the stored session under the lock (for writes).
func (s *sessions) with(key [32]byte, f func(*session)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss := s.m[key]; ss != nil {
		f(ss)
	}
}

// drop ends a session, in the store first: a logout that returns no
// error holds after a restart.
func (s *sessions) drop(key [32]byte) error {
	if err := s.deleteRecords(map[string][]byte{recordKey(key): nil}); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.m, key)
	s.mu.Unlock()
	return nil
}

// dropAdmin ends every session of a login but keep (after a password
// change), in the store first.
func (s *sessions) dropAdmin(admin string, keep [32]byte) error {
	s.mu.Lock()
	gone := map[string][]byte{}
	for k, ss := range s.m {
		if ss.admin == admin && k != keep {
			gone[recordKey(k)] = nil
		}
	}
	s.mu.Unlock()
	if err := s.deleteRecords(gone); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, ss := range s.m {
		if ss.admin == admin && k != keep {
			delete(s.m, k)
		}
	}
	return nil
}

// credentialsChanged keeps the session that changed its login's password
// or second factor: it takes the new stamp and, after a one-time password,
// may reach every page; in the store too.
func (s *sessions) credentialsChanged(key [32]byte, stamp string) error {
	s.mu.Lock()
	ss := s.m[key]
	if ss == nil {
		s.mu.Unlock()
		return nil
	}
	c := *ss
	s.mu.Unlock()
	c.mustChange, c.stamp = false, stamp
	if err := s.save(&c); err != nil {
		return err
	}
	s.with(key, func(ss *session) { ss.mustChange, ss.stamp = false, stamp })
	return nil
}

func (s *sessions) expired(ss *session, now time.Time) bool {
	life := s.lifetime
	if ss.admin == "" {
		life = anonLifetime
	}
	return now.Sub(ss.lastSeen) >= s.idle || now.Sub(ss.created) >= life
}

// evictLocked drops expired sessions and, if the table is still full, a
// tenth of it: login forms' sessions first, then the least recently used.
// It returns the store records to delete.
func (s *sessions) evictLocked(now time.Time) map[string][]byte {
	gone := s.pruneLocked(now)
	keep := maxSessions * 9 / 10
	if len(s.m) < keep {
		return gone
	}
	all := make([]*session, 0, len(s.m))
	for _, ss := range s.m {
		all = append(all, ss)
	}
	// Login forms go first, so a flood of them cannot log admins out.
	sort.Slice(all, func(i, j int) bool {
		if (all[i].admin == "") != (all[j].admin == "") {
			return all[i].admin == ""
		}
		return all[i].lastSeen.Before(all[j].lastSeen)
	})
	for _, ss := range all[:len(all)-keep+1] {
		delete(s.m, ss.key)
		if ss.admin != "" {
			gone[recordKey(ss.key)] = nil
		}
	}
	return gone
}

// validCSRF compares a submitted token with the session's in constant time.
func (ss *session) validCSRF(got string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(ss.csrf)) == 1
}
