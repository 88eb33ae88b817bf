package api

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"sync"
	"time"
)

// refreshStore keeps refresh tokens and their families in memory (node
// local; a restart logs every admin out — the store has no record for them
// yet). A refresh token is used once: using it returns a new token of the
// same family, and presenting a used token again revokes the whole family,
// including the access tokens issued with it, since one of the two holders
// is a thief.
type refreshStore struct {
	now func() time.Time

	mu       sync.Mutex
	tokens   map[[32]byte]*refreshToken // by SHA-256 of the token
	families map[string]*family
}

type refreshToken struct {
	family string
	used   bool
	exp    time.Time
}

type family struct {
	subject string
	revoked bool
	exp     time.Time // the family's absolute end: refresh never extends a login forever
}

// maxFamilies bounds memory; the oldest-ending family is dropped first.
const maxFamilies = 10000

func newRefreshStore(now func() time.Time) *refreshStore {
	return &refreshStore{now: now, tokens: map[[32]byte]*refreshToken{}, families: map[string]*family{}}
}

func randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// start opens a family for subject and returns its id and first token.
func (r *refreshStore) start(subject string, ttl time.Duration) (fam, tok string, err error) {
	if fam, err = randomToken(12); err != nil {
		return "", "", err
	}
	if tok, err = randomToken(32); err != nil {
		return "", "", err
	}
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pruneLocked(now)
	r.families[fam] = &family{subject: subject, exp: now.Add(ttl)}
	r.tokens[sha256.Sum256([]byte(tok))] = &refreshToken{family: fam, exp: now.Add(ttl)}
	return fam, tok, nil
}

// rotate spends tok and returns the next token of its family. reused
// reports a token presented a second time (its family is now revoked).
func (r *refreshStore) rotate(tok string) (subject, fam, next string, reused bool, ok bool) {
	next, err := randomToken(32)
	if err != nil {
		return "", "", "", false, false
	}
	now := r.now()
	h := sha256.Sum256([]byte(tok))
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.tokens[h]
	if t == nil {
		return "", "", "", false, false
	}
	f := r.families[t.family]
	if f == nil || f.revoked || !now.Before(t.exp) || !now.Before(f.exp) {
		return "", "", "", false, false
	}
	if t.used {
		f.revoked = true
		return f.subject, t.family, "", true, false
	}
	t.used = true
	r.tokens[sha256.Sum256([]byte(next))] = &refreshToken{family: t.family, exp: f.exp}
	return f.subject, t.family, next, false, true
}

// revoke ends the family of tok (logout). It reports whether tok was known.
func (r *refreshStore) revoke(tok string) bool {
	h := sha256.Sum256([]byte(tok))
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.tokens[h]
	if t == nil {
		return false
	}
	if f := r.families[t.family]; f != nil {
		f.revoked = true
	}
	return true
}

// live reports whether access tokens of family fam may still be used.
func (r *refreshStore) live(fam string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.families[fam]
	return f != nil && !f.revoked
}

// pruneLocked drops expired tokens and families, and the oldest families
// beyond maxFamilies.
func (r *refreshStore) pruneLocked(now time.Time) {
	if len(r.families) < maxFamilies/2 && len(r.tokens) < maxFamilies*4 {
		return
	}
	for id, f := range r.families {
		if !now.Before(f.exp) {
			delete(r.families, id)
		}
	}
	for len(r.families) >= maxFamilies {
		var oldest string
		for id, f := range r.families {
			if oldest == "" || f.exp.Before(r.families[oldest].exp) {
				oldest = id
			}
		}
		delete(r.families, oldest)
	}
	for h, t := range r.tokens {
		if _, ok := r.families[t.family]; !ok || !now.Before(t.exp) {
			delete(r.tokens, h)
		}
	}
}

// revokeSubject ends every family of subject except keep.
func (r *refreshStore) revokeSubject(subject, keep string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, f := range r.families {
		if f.subject == subject && id != keep {
			f.revoked = true
		}
	}
}
