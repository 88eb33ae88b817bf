package app

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
	"github.com/usipipo/usipipo/vpn/outline"
)

// Dynamic access keys (ssconf://). Each Outline key gets, with the key, an
// unguessable token (144 random bits, base64url) kept sealed in its record;
// the record also holds the token's SHA-256, which an index maps to the key,
// so the public listener finds a key with one index read and the database
// never holds a usable token in clear. A rotation replaces the password and
// keeps the token: the URL a user imported goes on working.
//
// Keys made before tokens existed get theirs from BackfillDynamicTokens,
// which the node runs when the public listener starts (a service-layer
// migration: the tokens are random material, decided before apply like every
// command's). Until then their configurations simply carry no ssconf:// URL.

const (
	recDynamic = "key-dynamic"
	// DynamicPath is where the public listener serves dynamic keys.
	DynamicPath = "/k/"
	tokenBytes  = 18
)

// newDynamicToken makes a key's token and returns it sealed, with its hash.
func (s *Service) newDynamicToken(keyID string) (model.Sealed, string, error) {
	b := make([]byte, tokenBytes)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return nil, "", fmt.Errorf("generating a dynamic key token: %w", err)
	}
	tok := base64.RawURLEncoding.EncodeToString(b)
	sealed, err := s.seal(recDynamic, keyID, []byte(tok))
	if err != nil {
		return nil, "", err
	}
	return sealed, tokenHash(tok), nil
}

func tokenHash(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

// wellFormedToken rejects what no token of ours can be before any lookup.
func wellFormedToken(tok string) bool {
	if len(tok) < 22 || len(tok) > 64 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(tok)
	return err == nil
}

// dynamicURL is the ssconf:// URL of key k, or "" when the public listener
// is off or k has no token yet.
func (s *Service) dynamicURL(k *model.Key) (string, error) {
	if s.ends.PublicPort == 0 || len(k.Dynamic) == 0 {
		return "", nil
	}
	tok, err := s.open(recDynamic, k.ID, k.Version, k.Dynamic)
	if err != nil {
		return "", err
	}
	return outline.DynamicKeyURL(s.host(), s.ends.PublicPort, DynamicPath+string(tok), k.Name), nil
}

// DynamicKey resolves an ssconf:// token to the key's current server, port,
// secret and prefix, or to a refusal the Outline client shows (expired, over
// its data cap, suspended or revoked), in the owner's language. An unknown
// token is outline.ErrNotFound. It implements outline.DynamicSource.
func (s *Service) DynamicKey(ctx context.Context, token string) (outline.DynamicKey, error) {
	if !wellFormedToken(token) {
		return outline.DynamicKey{}, outline.ErrNotFound
	}
	k, err := s.st.KeyByDynamicHash(tokenHash(token))
	if errors.Is(err, model.ErrNotFound) || (err == nil && k.Type != model.Outline) {
		return outline.DynamicKey{}, outline.ErrNotFound
	}
	if err != nil {
		return outline.DynamicKey{}, err
	}
	u, err := s.st.User(k.UserID)
	if err != nil {
		return outline.DynamicKey{}, fmt.Errorf("owner of key %s: %w", k.ID, err)
	}
	if why := s.refusal(k, u); why != "" {
		return outline.DynamicKey{Refusal: refusalText(why, u.Language)}, nil
	}
	plain, err := s.open(recKey, k.ID, k.Version, k.Secret)
	if err != nil {
		return outline.DynamicKey{}, err
	}
	sec, err := outline.ParseSecret(plain)
	if err != nil {
		return outline.DynamicKey{}, err
	}
	return outline.DynamicKey{Server: s.host(), Port: s.ends.SSPort, Secret: sec,
		Prefix: prefixBytes(s.Policy().OutlinePrefix)}, nil
}

// Reasons a dynamic key is refused.
const (
	refRevoked   = "revoked"
	refSuspended = "suspended"
	refExpired   = "expired"
	refCap       = "cap"
)

// refusal says why the data plane would not serve k now ("" if it would).
// A key suspended by reaching its cap says so, not just "suspended".
func (s *Service) refusal(k *model.Key, u *model.User) string {
	switch {
	case k.Status == model.KeyRevoked || u.Erased:
		return refRevoked
	case k.Status == model.KeyExpired || (!k.Limits.ExpiresAt.IsZero() && !s.now().Before(k.Limits.ExpiresAt)):
		return refExpired
	case k.Limits.DataCap > 0 && k.Limits.ThrottleBps == 0 && k.PeriodUsage() >= k.Limits.DataCap:
		return refCap
	case k.Status == model.KeySuspended || u.Banned:
		return refSuspended
	}
	return ""
}

func refusalText(why, lang string) string {
	en := strings.HasPrefix(lang, "en")
	switch why {
	case refRevoked:
		if en {
			return "This access key has been revoked."
		}
		return "Esta clave de acceso fue revocada."
	case refSuspended:
		if en {
			return "This access key is suspended. Contact support."
		}
		return "Esta clave de acceso está suspendida. Contacta con soporte."
	case refExpired:
		if en {
			return "This access key has expired. Renew your plan to keep using it."
		}
		return "Esta clave de acceso expiró. Renueva tu plan para seguir usándola."
	}
	if en {
		return "This access key has used all its data. Buy more data or renew your plan."
	}
	return "Esta clave de acceso agotó sus datos. Compra más datos o renueva tu plan."
}

// prefixBytes turns the policy's Outline prefix (one code point per byte,
// as Outline writes it) into raw bytes.
func prefixBytes(text string) string {
	b := make([]byte, 0, len(text))
	for _, r := range text {
		b = append(b, byte(r))
	}
	return string(b)
}

// checkPrefix accepts an Outline salt prefix: at most 16 code points, each
// U+0000..U+00FF (one byte of the salt).
func checkPrefix(text string) error {
	n := 0
	for _, r := range text {
		if r > 0xFF {
			return fmt.Errorf("outline prefix: U+%04X is not a byte: %w", r, model.ErrInvalid)
		}
		n++
	}
	if n > 16 {
		return fmt.Errorf("outline prefix longer than 16 bytes: %w", model.ErrInvalid)
	}
	return nil
}

// BackfillDynamicTokens gives every Outline key that is not revoked and has
// no dynamic token one, in batches of one transaction each, and returns how
// many it gave. Running it again gives none.
func (s *Service) BackfillDynamicTokens(ctx context.Context) (int, error) {
	var ops []store.Op
	done := 0
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		for i, err := range s.st.DoOps(ctx, ops) {
			if err != nil {
				return fmt.Errorf("dynamic token for key %s: %w", ops[i].Cmd.(store.UpdateKey).KeyID, err)
			}
		}
		done += len(ops)
		ops = ops[:0]
		return nil
	}
	pg := store.Page{Limit: store.MaxLimit}
	for {
		ks, next, err := s.st.Keys(store.KeyFilter{}, pg)
		if err != nil {
			return done, err
		}
		for i := range ks {
			k := &ks[i]
			if k.Type != model.Outline || k.DynHash != "" || k.Status == model.KeyRevoked {
				continue
			}
			sealed, hash, err := s.newDynamicToken(k.ID)
			if err != nil {
				return done, err
			}
			ops = append(ops, store.Op{Meta: s.meta(ActorSystem), Cmd: store.UpdateKey{KeyID: k.ID, Dynamic: sealed, DynHash: hash}})
		}
		if err := flush(); err != nil {
			return done, err
		}
		if next == "" {
			return done, nil
		}
		pg.After = next
	}
}
