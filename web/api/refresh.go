package api

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/usipipo/usipipo/store"
)

// refreshStore keeps refresh tokens and their families. A refresh token is
// used once: using it returns a new token of the same family, and
// presenting a used token again revokes the whole family, including the
// access tokens issued with it, since one of the two holders is a thief.
//
// Every change is written through to the node-local telemetry bucket
// store.APIRefresh before it takes effect, so logins (and the revocation
// of a replayed family) survive a restart. Telemetry rather than domain
// commands: these are a node's sessions, high-churn, with nothing to
// audit or replicate; only SHA-256 hashes of the tokens are stored.
type refreshStore struct {
	now func() time.Time
	st  *store.Store // nil: memory only

	mu       sync.Mutex
	tokens   map[[32]byte]*refreshToken // by SHA-256 of the token
	families map[string]*family
}

type refreshToken struct {
	Family string    `json:"f"`
	Used   bool      `json:"u,omitempty"`
	Exp    time.Time `json:"e"`
}

type family struct {
	Subject string    `json:"s"`
	Revoked bool      `json:"r,omitempty"`
	Exp     time.Time `json:"e"` // the family's absolute end: refresh never extends a login forever
	// Stamp is the login's credential stamp (app.Service.AdminStamp) when
	// it logged in: once the login's is another, the family is refused.
	Stamp string `json:"k,omitempty"`
}

// maxFamilies bounds memory; the oldest-ending family is dropped first.
const maxFamilies = 10000

// Keys in store.APIRefresh.
const (
	famPrefix = "f:"
	tokPrefix = "t:"
)

func tokKey(h [32]byte) string { return tokPrefix + hex.EncodeToString(h[:]) }

func newRefreshStore(now func() time.Time, st *store.Store) *refreshStore {
	return &refreshStore{now: now, st: st, tokens: map[[32]byte]*refreshToken{}, families: map[string]*family{}}
}

// load reads the persisted families and tokens, dropping expired ones.
func (r *refreshStore) load() error {
	if r.st == nil {
		return nil
	}
	now := r.now()
	gone := map[string][]byte{}
	var bad error
	err := r.st.ScanTelemetry(store.APIRefresh, "", func(k, v []byte) bool {
		key := string(k)
		switch {
		case strings.HasPrefix(key, famPrefix):
			var f family
			if err := json.Unmarshal(v, &f); err != nil || !now.Before(f.Exp) {
				gone[key] = nil
				return true
			}
			r.families[key[len(famPrefix):]] = &f
		case strings.HasPrefix(key, tokPrefix):
			var t refreshToken
			h, herr := hex.DecodeString(key[len(tokPrefix):])
			if err := json.Unmarshal(v, &t); err != nil || herr != nil || len(h) != 32 || !now.Before(t.Exp) {
				gone[key] = nil
				return true
			}
			r.tokens[[32]byte(h)] = &t
		default:
			bad = fmt.Errorf("unknown refresh record %q", key)
			return false
		}
		return true
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		return fmt.Errorf("loading refresh tokens: %w", err)
	}
	if len(gone) > 0 {
		return r.st.PutTelemetry(store.APIRefresh, gone)
	}
	return nil
}

// saveLocked writes records (nil values delete) before the caller changes
// memory, so a failed write leaves both unchanged.
func (r *refreshStore) saveLocked(values map[string][]byte) error {
	if r.st == nil || len(values) == 0 {
		return nil
	}
	if err := r.st.PutTelemetry(store.APIRefresh, values); err != nil {
		return fmt.Errorf("saving refresh tokens: %w", err)
	}
	return nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil { // plain structs of strings, bools and times
		panic(err)
	}
	return b
}

func randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// start opens a family for subject, whose credentials have stamp, and
// returns its id and first token.
func (r *refreshStore) start(subject, stamp string, ttl time.Duration) (fam, tok string, err error) {
	if fam, err = randomToken(12); err != nil {
		return "", "", err
	}
	if tok, err = randomToken(32); err != nil {
		return "", "", err
	}
	now := r.now()
	f := &family{Subject: subject, Exp: now.Add(ttl), Stamp: stamp}
	t := &refreshToken{Family: fam, Exp: now.Add(ttl)}
	h := sha256.Sum256([]byte(tok))
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.pruneLocked(now); err != nil {
		return "", "", err
	}
	if err := r.saveLocked(map[string][]byte{famPrefix + fam: mustJSON(f), tokKey(h): mustJSON(t)}); err != nil {
		return "", "", err
	}
	r.families[fam] = f
	r.tokens[h] = t
	return fam, tok, nil
}

// rotation is the outcome of rotate.
type rotation struct {
	subject, family, next, stamp string
	reused                       bool // a spent token came back: its family is now revoked
}

// rotate spends tok and returns the next token of its family; ok is false
// for an unknown, expired, revoked or reused token.
func (r *refreshStore) rotate(tok string) (rot rotation, ok bool, err error) {
	next, err := randomToken(32)
	if err != nil {
		return rot, false, err
	}
	now := r.now()
	h := sha256.Sum256([]byte(tok))
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.tokens[h]
	if t == nil {
		return rot, false, nil
	}
	f := r.families[t.Family]
	if f == nil || f.Revoked || !now.Before(t.Exp) || !now.Before(f.Exp) {
		return rot, false, nil
	}
	rot.subject, rot.family, rot.stamp = f.Subject, t.Family, f.Stamp
	if t.Used {
		revoked := *f
		revoked.Revoked = true
		if err := r.saveLocked(map[string][]byte{famPrefix + t.Family: mustJSON(&revoked)}); err != nil {
			return rot, false, err
		}
		f.Revoked = true
		rot.reused = true
		return rot, false, nil
	}
	spent := *t
	spent.Used = true
	nt := &refreshToken{Family: t.Family, Exp: f.Exp}
	nh := sha256.Sum256([]byte(next))
	if err := r.saveLocked(map[string][]byte{tokKey(h): mustJSON(&spent), tokKey(nh): mustJSON(nt)}); err != nil {
		return rotation{}, false, err
	}
	t.Used = true
	r.tokens[nh] = nt
	rot.next = next
	return rot, true, nil
}

// revoke ends the family of tok (logout). It reports whether tok was known.
func (r *refreshStore) revoke(tok string) (bool, error) {
	h := sha256.Sum256([]byte(tok))
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.tokens[h]
	if t == nil {
		return false, nil
	}
	return true, r.revokeLocked(t.Family)
}

func (r *refreshStore) revokeLocked(fam string) error {
	f := r.families[fam]
	if f == nil || f.Revoked {
		return nil
	}
	revoked := *f
	revoked.Revoked = true
	if err := r.saveLocked(map[string][]byte{famPrefix + fam: mustJSON(&revoked)}); err != nil {
		return err
	}
	f.Revoked = true
	return nil
}

// live reports whether access tokens of family fam may still be used, as
// far as the family knows, and the credential stamp it was opened with.
func (r *refreshStore) live(fam string) (stamp string, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.families[fam]
	if f == nil || f.Revoked {
		return "", false
	}
	return f.Stamp, true
}

// restamp gives family fam a new credential stamp (the login that changed
// its password keeps its family).
func (r *refreshStore) restamp(fam, stamp string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.families[fam]
	if f == nil || f.Revoked || f.Stamp == stamp {
		return nil
	}
	next := *f
	next.Stamp = stamp
	if err := r.saveLocked(map[string][]byte{famPrefix + fam: mustJSON(&next)}); err != nil {
		return err
	}
	f.Stamp = stamp
	return nil
}

// pruneLocked drops expired tokens and families, and the oldest families
// beyond maxFamilies, from memory and from the store.
func (r *refreshStore) pruneLocked(now time.Time) error {
	if len(r.families) < maxFamilies/2 && len(r.tokens) < maxFamilies*4 {
		return nil
	}
	gone := map[string][]byte{}
	for id, f := range r.families {
		if !now.Before(f.Exp) {
			gone[famPrefix+id] = nil
		}
	}
	for len(r.families)-len(gone) >= maxFamilies {
		var oldest string
		for id, f := range r.families {
			if _, dropped := gone[famPrefix+id]; !dropped && (oldest == "" || f.Exp.Before(r.families[oldest].Exp)) {
				oldest = id
			}
		}
		gone[famPrefix+oldest] = nil
	}
	for h, t := range r.tokens {
		if _, dropped := gone[famPrefix+t.Family]; dropped || r.families[t.Family] == nil || !now.Before(t.Exp) {
			gone[tokKey(h)] = nil
		}
	}
	if err := r.saveLocked(gone); err != nil {
		return err
	}
	for k := range gone {
		if id, ok := strings.CutPrefix(k, famPrefix); ok {
			delete(r.families, id)
		}
	}
	for h := range r.tokens {
		if _, dropped := gone[tokKey(h)]; dropped {
			delete(r.tokens, h)
		}
	}
	return nil
}

// revokeSubject ends every family of subject except keep.
func (r *refreshStore) revokeSubject(subject, keep string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, f := range r.families {
		if f.Subject == subject && id != keep && !f.Revoked {
			if err := r.revokeLocked(id); err != nil {
				return err
			}
		}
	}
	return nil
}
