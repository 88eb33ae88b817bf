package app

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/cache"
	"github.com/usipipo/usipipo/store/keyring"
	"github.com/usipipo/usipipo/store/model"
)

// Views and checks the REST API needs beside the methods the CLI uses.

// UserFilter narrows ListUsers. Zero fields match everything.
type UserFilter struct {
	Query  string // a user id, Telegram id or referral code: at most one result
	Banned *bool
	Erased *bool
}

// listScanLimit bounds how many records one filtered page may scan; a page
// that reaches it returns fewer items with a cursor to continue from.
const listScanLimit = 5000

// ListUsers lists users matching f. Filtering happens after the store's
// id-ordered scan, so a page may hold fewer than p.Limit users while its
// cursor is not empty.
func (s *Service) ListUsers(ctx context.Context, f UserFilter, p store.Page) ([]UserView, string, error) {
	if f.Query != "" {
		u, err := s.FindUser(ctx, f.Query)
		if err != nil {
			if isNotFound(err) {
				return []UserView{}, "", nil
			}
			return nil, "", err
		}
		if !f.match(&u.User) {
			return []UserView{}, "", nil
		}
		return []UserView{*u}, "", nil
	}
	if f.Banned == nil && f.Erased == nil {
		return s.Users(ctx, p)
	}
	limit := p.Limit
	if limit <= 0 {
		limit = store.DefaultLimit
	}
	if limit > store.MaxLimit {
		limit = store.MaxLimit
	}
	out := []UserView{}
	scanned := 0
	for len(out) < limit && scanned < listScanLimit {
		us, next, err := s.st.Users(store.Page{After: p.After, Limit: limit - len(out)})
		if err != nil {
			return nil, "", err
		}
		scanned += len(us)
		for i := range us {
			if !f.match(&us[i]) {
				continue
			}
			v, err := s.view(&us[i])
			if err != nil {
				return nil, "", err
			}
			out = append(out, *v)
		}
		p.After = next
		if next == "" {
			break
		}
	}
	return out, p.After, nil
}

func (f UserFilter) match(u *model.User) bool {
	return (f.Banned == nil || *f.Banned == u.Banned) && (f.Erased == nil || *f.Erased == u.Erased)
}

func isNotFound(err error) bool {
	return errors.Is(err, model.ErrNotFound)
}

// CachedUser is User with the opened personal fields cached by user id and
// record version (the users TTL class); role and balance are read fresh,
// since grants expire and ledger entries do not change the user's version.
func (s *Service) CachedUser(ctx context.Context, id string) (*UserView, error) {
	if !model.ValidID(id) {
		return nil, fmt.Errorf("user id %q: %w", id, model.ErrInvalid)
	}
	u, err := s.userRecord(ctx, id)
	if err != nil {
		return nil, err
	}
	personal, err := cache.GetOrCompute(ctx, s.cache, cache.Key{Kind: "user-personal", ID: u.ID, Version: u.Version}, cache.Users,
		func() (model.Personal, int64, error) {
			var p model.Personal
			if len(u.Personal) == 0 {
				return p, 64, nil
			}
			k, err := s.userKey(u.ID)
			if err != nil {
				return p, 64, nil // erased: no personal data left
			}
			if b, err := keyring.Open(k, recPersonal, u.ID, u.Personal); err == nil {
				_ = json.Unmarshal(b, &p)
			}
			return p, int64(len(p.Username)+len(p.FirstName)+len(p.LastName)+len(p.Email)) + 64, nil
		})
	if err != nil {
		return nil, err
	}
	v := &UserView{User: *u, Personal: personal, Role: u.RoleAt(s.now())}
	if s.admins[u.TelegramID] && u.TelegramID != 0 {
		v.Role = model.RoleSuperadmin
	}
	v.User.Personal = nil
	if v.Balance, err = s.st.Balance(u.ID); err != nil {
		return nil, err
	}
	return v, nil
}

// userRecord is the user's record, decoded once per stored form: the
// cache is keyed by the hash of the stored bytes and the entry holds those
// bytes, so any change to the record (a new version) is a miss. The read
// path of a cached user view then costs one bbolt get, not a JSON decode.
func (s *Service) userRecord(ctx context.Context, id string) (*model.User, error) {
	raw, err := s.st.UserBytes(id, nil)
	if err != nil {
		return nil, err
	}
	type decoded struct {
		raw []byte
		u   model.User
	}
	k := cache.Key{Kind: "user-record", ID: id, Version: xxhash.Sum64(raw)}
	d, err := cache.GetOrCompute(ctx, s.cache, k, cache.Users, func() (*decoded, int64, error) {
		u, err := store.DecodeUser(raw)
		if err != nil {
			return nil, 0, err
		}
		return &decoded{raw: bytes.Clone(raw), u: *u}, int64(2*len(raw)) + 64, nil
	})
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(d.raw, raw) { // a hash collision: decode this form
		return store.DecodeUser(raw)
	}
	u := d.u // the caller's own copy, slices included
	u.Roles, u.TrialsUsed, u.Personal = slices.Clone(u.Roles), slices.Clone(u.TrialsUsed), bytes.Clone(u.Personal)
	return &u, nil
}

// Balance is a user's credit balance.
func (s *Service) Balance(ctx context.Context, userID string) (int64, error) {
	if _, err := s.User(ctx, userID); err != nil {
		return 0, err
	}
	return s.st.Balance(userID)
}

// CreditLedger lists a user's ledger entries oldest first.
func (s *Service) CreditLedger(ctx context.Context, userID string, p store.Page) ([]model.CreditEntry, string, error) {
	if !model.ValidID(userID) {
		return nil, "", fmt.Errorf("user id %q: %w", userID, model.ErrInvalid)
	}
	return s.st.Credits(userID, p)
}

// Subscriptions lists a user's subscriptions by expiry.
func (s *Service) Subscriptions(ctx context.Context, userID string, p store.Page) ([]model.Subscription, string, error) {
	if !model.ValidID(userID) {
		return nil, "", fmt.Errorf("user id %q: %w", userID, model.ErrInvalid)
	}
	return s.st.Subscriptions(userID, p)
}

// ListSubscriptions lists a user's subscriptions matching f; "current" is
// judged now.
func (s *Service) ListSubscriptions(ctx context.Context, userID string, f store.SubFilter, p store.Page) ([]model.Subscription, string, error) {
	if !model.ValidID(userID) {
		return nil, "", fmt.Errorf("user id %q: %w", userID, model.ErrInvalid)
	}
	if f.Status != "" && f.Status != model.SubActive && f.Status != model.SubCancelled {
		return nil, "", fmt.Errorf("subscription status %q: %w", f.Status, model.ErrInvalid)
	}
	f.At = s.now()
	return s.st.SubscriptionsWhere(userID, f, p)
}

// Proxy returns an MTProto secret record without its secret.
func (s *Service) Proxy(ctx context.Context, id string) (*model.Proxy, error) {
	if !model.ValidID(id) {
		return nil, fmt.Errorf("proxy id %q: %w", id, model.ErrInvalid)
	}
	p, err := s.st.Proxy(id)
	if err != nil {
		return nil, err
	}
	p.Secret = nil
	return p, nil
}

// Audit lists audit entries newest first. An action filter needs a user.
func (s *Service) Audit(ctx context.Context, f store.AuditFilter, p store.Page) ([]model.AuditEntry, string, error) {
	if f.Action != "" && f.UserID == "" {
		return nil, "", fmt.Errorf("an action filter needs a user_id: %w", model.ErrInvalid)
	}
	return s.st.Audit(f, p)
}

// ErrSecondFactor is returned by CheckAdminLogin when the password is right
// but the login has TOTP enrolled and the code is missing or wrong.
var ErrSecondFactor = fmt.Errorf("second factor required or wrong: %w", ErrUnauthorized)

// recAdminTOTP is the record type TOTP seeds are sealed under (id: the
// admin's username).
const recAdminTOTP = "admin.totp"

// CheckAdminLogin verifies a panel/API login: the password, and when the
// login has a TOTP seed enrolled, a current RFC 6238 code (30 s steps, one
// step of drift either way, 6 digits, SHA-1).
func (s *Service) CheckAdminLogin(ctx context.Context, username, password, code string) (*model.Admin, error) {
	adm, err := s.CheckAdminPassword(ctx, username, password)
	if err != nil {
		return nil, err
	}
	full, err := s.st.Admin(username)
	if err != nil {
		return nil, ErrUnauthorized
	}
	if len(full.TOTP) == 0 {
		return adm, nil
	}
	seed, err := keyring.Open(s.dataKey, recAdminTOTP, username, full.TOTP)
	if err != nil {
		return nil, fmt.Errorf("opening TOTP seed of %s: %w", username, err)
	}
	if !ValidTOTP(seed, code, s.now()) {
		return nil, ErrSecondFactor
	}
	return adm, nil
}

// ValidTOTP checks a 6-digit RFC 6238 code against seed at t, accepting one
// 30-second step of clock drift either way.
func ValidTOTP(seed []byte, code string, t time.Time) bool {
	if len(code) != 6 {
		return false
	}
	step := t.Unix() / 30
	ok := 0
	for d := int64(-1); d <= 1; d++ {
		ok |= subtle.ConstantTimeCompare([]byte(TOTPCode(seed, step+d)), []byte(code))
	}
	return ok == 1
}

// TOTPCode is the RFC 4226 HOTP value of seed at counter, 6 digits.
func TOTPCode(seed []byte, counter int64) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(counter))
	m := hmac.New(sha1.New, seed)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	return fmt.Sprintf("%06d", v%1000000)
}

// TOTPSeedText is a seed as authenticator apps take it (base32, no padding).
func TOTPSeedText(seed []byte) string {
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(seed)
}

// MinAdminPassword is the shortest password ChangeAdminPassword accepts.
const MinAdminPassword = 12

// ChangeAdminPassword sets a login's password after checking the current
// one, and clears the must-change flag. An enrolled TOTP seed is kept.
func (s *Service) ChangeAdminPassword(ctx context.Context, a Actor, username, current, next string) error {
	if _, err := s.CheckAdminPassword(ctx, username, current); err != nil {
		return err
	}
	if len(next) < MinAdminPassword || len(next) > 1024 || next == current {
		return fmt.Errorf("the new password must differ from the old and have %d to 1024 characters: %w",
			MinAdminPassword, model.ErrInvalid)
	}
	hash, err := keyring.HashPassword(s.rand, next)
	if err != nil {
		return err
	}
	return s.do(ctx, s.meta(a), store.PutAdmin{Username: username, PasswordHash: hash}, "")
}
