package api

import (
	"bytes"
	"context"
	"crypto/subtle"
	"sync"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/store/keyring"
	"github.com/usipipo/usipipo/store/model"
)

// keyCache keeps API key verdicts so the hot path does not decode the key's
// record on every request. An entry holds the record's stored bytes; it is
// used only while the store still holds exactly those bytes (one bbolt get
// and a comparison), so a revocation or any other change to the record is
// seen by the next request — the cache can be stale never, only cold.
type keyCache struct {
	mu sync.RWMutex
	m  map[string]*keyVerdict // by key id
}

type keyVerdict struct {
	raw []byte       // the record's stored bytes when the verdict was made
	key model.APIKey // with Hash: the presented secret is checked each time
}

// maxKeyVerdicts bounds the cache; when full it starts over.
const maxKeyVerdicts = 4096

func newKeyCache() *keyCache { return &keyCache{m: map[string]*keyVerdict{}} }

// apiKey authenticates an API token like app.Service.AuthenticateAPIKey
// (whose answer it caches): a known, unrevoked, unexpired key whose secret
// matches.
func (a *api) apiKey(ctx context.Context, tok string) (*model.APIKey, error) {
	id, secret, err := keyring.ParseAPIToken(tok)
	if err != nil {
		return nil, app.ErrUnauthorized
	}
	raw, err := a.svc.Store().APIKeyBytes(id, nil)
	if err != nil {
		return nil, app.ErrUnauthorized
	}
	a.keys.mu.RLock()
	v := a.keys.m[id]
	a.keys.mu.RUnlock()
	if v == nil || !bytes.Equal(v.raw, raw) {
		return a.verifyKey(ctx, tok, id, raw)
	}
	k := v.key
	h := keyring.HashSecret(secret)
	if subtle.ConstantTimeCompare(h[:], k.Hash) != 1 || k.Revoked || (!k.ExpiresAt.IsZero() && !a.now().Before(k.ExpiresAt)) {
		return nil, app.ErrUnauthorized
	}
	k.Hash = nil
	return &k, nil
}

// verifyKey asks the service and caches its verdict under raw, the bytes
// read before asking: if the record changed in between, raw no longer
// matches the store and the entry is never used.
func (a *api) verifyKey(ctx context.Context, tok, id string, raw []byte) (*model.APIKey, error) {
	k, err := a.svc.AuthenticateAPIKey(ctx, tok)
	if err != nil {
		return nil, err
	}
	full, err := a.svc.Store().APIKey(id) // for the hash, which the service's answer omits
	if err != nil {
		return nil, app.ErrUnauthorized
	}
	a.keys.mu.Lock()
	if len(a.keys.m) >= maxKeyVerdicts {
		a.keys.m = map[string]*keyVerdict{}
	}
	a.keys.m[id] = &keyVerdict{raw: bytes.Clone(raw), key: *full}
	a.keys.mu.Unlock()
	return k, nil
}
