package app

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"time"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/keyring"
	"github.com/usipipo/usipipo/store/model"
)

// ErrUnauthorized is returned for a bad API key or password. It says
// nothing about which part was wrong.
var ErrUnauthorized = errors.New("unauthorized")

// NewAPIKey is a created API key with its token, which is shown once.
type NewAPIKey struct {
	Key   model.APIKey `json:"key"`
	Token string       `json:"token"`
}

// CreateAPIKey makes an API key with scopes and an optional expiry.
func (s *Service) CreateAPIKey(ctx context.Context, a Actor, name string, scopes []model.Scope, expires time.Time) (*NewAPIKey, error) {
	id, secret, token, err := keyring.NewAPIToken(s.rand)
	if err != nil {
		return nil, err
	}
	h := keyring.HashSecret(secret)
	cmd := store.CreateAPIKey{ID: id, Name: name, Scopes: scopes, Hash: h[:], ExpiresAt: expires}
	if err := s.do(ctx, s.meta(a), cmd, ""); err != nil {
		return nil, err
	}
	k, err := s.st.APIKey(id)
	if err != nil {
		return nil, err
	}
	k.Hash = nil
	return &NewAPIKey{Key: *k, Token: token}, nil
}

// AuthenticateAPIKey checks a bearer token: a lookup by key id and one
// SHA-256, no slow hash on the hot path.
func (s *Service) AuthenticateAPIKey(ctx context.Context, token string) (*model.APIKey, error) {
	id, secret, err := keyring.ParseAPIToken(token)
	if err != nil {
		return nil, ErrUnauthorized
	}
	k, err := s.st.APIKey(id)
	if err != nil {
		return nil, ErrUnauthorized
	}
	h := keyring.HashSecret(secret)
	if subtle.ConstantTimeCompare(h[:], k.Hash) != 1 || k.Revoked || (!k.ExpiresAt.IsZero() && !s.now().Before(k.ExpiresAt)) {
		return nil, ErrUnauthorized
	}
	k.Hash = nil
	return k, nil
}

// APIKeys lists API keys without their hashes.
func (s *Service) APIKeys(ctx context.Context, p store.Page) ([]model.APIKey, string, error) {
	ks, next, err := s.st.APIKeys(p)
	for i := range ks {
		ks[i].Hash = nil
	}
	return ks, next, err
}

// ListAPIKeys lists the API keys matching f, without their hashes; expiry is
// judged now.
func (s *Service) ListAPIKeys(ctx context.Context, f store.APIKeyFilter, p store.Page) ([]model.APIKey, string, error) {
	f.At = s.now()
	ks, next, err := s.st.APIKeysWhere(f, p)
	for i := range ks {
		ks[i].Hash = nil
	}
	return ks, next, err
}

// RevokeAPIKey disables an API key.
func (s *Service) RevokeAPIKey(ctx context.Context, a Actor, id string) error {
	return s.do(ctx, s.meta(a), store.RevokeAPIKey{ID: id}, "")
}

// DefaultAdmin is the panel login created by init.
const DefaultAdmin = "admin"

// ResetAdminPassword sets a new random one-time password for a panel login
// (creating it if needed) and returns it; the next login must change it.
func (s *Service) ResetAdminPassword(ctx context.Context, a Actor, username string) (string, error) {
	if username == "" {
		username = DefaultAdmin
	}
	pw, err := keyring.NewPassword(s.rand)
	if err != nil {
		return "", err
	}
	hash, err := keyring.HashPassword(s.rand, pw)
	if err != nil {
		return "", err
	}
	if err := s.do(ctx, s.meta(a), store.PutAdmin{Username: username, PasswordHash: hash, MustChange: true}, ""); err != nil {
		return "", err
	}
	return pw, nil
}

// CheckAdminPassword verifies a panel login's password.
func (s *Service) CheckAdminPassword(ctx context.Context, username, password string) (*model.Admin, error) {
	adm, err := s.st.Admin(username)
	if err != nil {
		// Spend the same time as a real check so names cannot be probed.
		_, _ = keyring.VerifyPassword("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g", password)
		return nil, ErrUnauthorized
	}
	ok, err := keyring.VerifyPassword(adm.PasswordHash, password)
	if err != nil || !ok {
		return nil, ErrUnauthorized
	}
	adm.PasswordHash, adm.TOTP = "", nil
	return adm, nil
}

// AdminStamp is a digest of a login's credentials: its password hash and
// its sealed TOTP seed. It changes when the password is changed or reset
// and when the second factor is enrolled, replaced or removed, and at no
// other time (spending a recovery code leaves it alone). The panel and the
// API keep the stamp read before a login's check with each session and
// refresh family, and refuse one whose stamp is no longer the login's: a
// credential change then ends every login made before it, whichever
// surface (panel, API, CLI) made the change and on every node that sees
// the change. The stamp reveals nothing the password hash does not.
func (s *Service) AdminStamp(ctx context.Context, username string) (string, error) {
	adm, err := s.st.Admin(username)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write([]byte("usipipo admin credential stamp v1\x00"))
	h.Write([]byte(adm.PasswordHash))
	h.Write([]byte{0})
	h.Write(adm.TOTP)
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:18]), nil
}

// IsAdmin reports whether a Telegram user is an admin now, by
// configuration or by an unexpired role grant.
func (s *Service) IsAdmin(ctx context.Context, tg int64) bool {
	if s.admins[tg] {
		return true
	}
	u, err := s.st.UserByTelegram(tg)
	if err != nil || u.Banned || u.Erased {
		return false
	}
	return u.RoleAt(s.now()) != model.RoleUser
}
