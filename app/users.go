package app

import (
	"context"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/keyring"
	"github.com/usipipo/usipipo/store/model"
)

// NewUser is what registering a user needs.
type NewUser struct {
	TelegramID   int64
	Username     string
	FirstName    string
	LastName     string
	Language     string // "es" (default) or "en"
	ReferralCode string // the inviter's code, optional
}

// UserView is a user with their personal fields opened.
type UserView struct {
	model.User
	Personal model.Personal `json:"personal"`
	Role     model.Role     `json:"role"`
	Balance  int64          `json:"balance"`
}

const (
	recUser     = "user"
	recPersonal = "user.personal"
)

// language maps a Telegram language code ("en-US") to one the node speaks:
// Spanish, the original audience's, unless it is English.
func language(l string) string {
	l = strings.ToLower(strings.TrimSpace(l))
	if i := strings.IndexAny(l, "-_"); i > 0 {
		l = l[:i]
	}
	if l == "en" {
		return "en"
	}
	return "es"
}

// RegisterUser creates a user with their own personal-data key. A Telegram
// id already registered returns that user and model.ErrExists.
func (s *Service) RegisterUser(ctx context.Context, a Actor, in NewUser) (*UserView, error) {
	if in.TelegramID < 0 {
		return nil, fmt.Errorf("telegram id %d: %w", in.TelegramID, model.ErrInvalid)
	}
	if len(in.Username) > 64 || len(in.FirstName) > 128 || len(in.LastName) > 128 || len(in.ReferralCode) > 32 {
		return nil, fmt.Errorf("name or referral code too long: %w", model.ErrInvalid)
	}
	if in.TelegramID != 0 {
		if u, err := s.st.UserByTelegram(in.TelegramID); err == nil {
			v, verr := s.view(u)
			if verr != nil {
				return nil, verr
			}
			return v, fmt.Errorf("telegram id %d: %w", in.TelegramID, model.ErrExists)
		}
	}
	m := s.meta(a)
	id, err := s.newID(m.At)
	if err != nil {
		return nil, err
	}
	userKey, err := keyring.GenerateKey(s.rand)
	if err != nil {
		return nil, err
	}
	wrapped, err := keyring.Wrap(s.dataKey, userKey, "user:"+id, s.rand)
	if err != nil {
		return nil, fmt.Errorf("wrapping user key: %w", err)
	}
	personal := model.Personal{Username: in.Username, FirstName: in.FirstName, LastName: in.LastName}
	sealedPersonal, err := s.sealPersonal(userKey, id, personal)
	if err != nil {
		return nil, err
	}
	code, err := referralCode(s.rand)
	if err != nil {
		return nil, err
	}
	cmd := store.CreateUser{ID: id, TelegramID: in.TelegramID, Personal: sealedPersonal, UserKey: wrapped,
		Language: language(in.Language), ReferralCode: code, TrialGuard: s.trialGuard(in.TelegramID)}
	if in.ReferralCode != "" {
		ref, err := s.st.UserByReferralCode(strings.ToLower(in.ReferralCode))
		if err == nil && ref.ID != id {
			cmd.ReferredBy = ref.ID
			cmd.ReferralCredits = s.Policy().ReferralCredits
		}
	}
	if err := s.do(ctx, m, cmd, id); err != nil {
		return nil, err
	}
	return s.User(ctx, id)
}

func referralCode(r io.Reader) (string, error) {
	b := make([]byte, 5)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("referral code: %w", err)
	}
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b)), nil
}

func (s *Service) sealPersonal(userKey keyring.Key, id string, p model.Personal) (model.Sealed, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	return keyring.Seal(userKey, s.rand, recPersonal, id, b)
}

func (s *Service) userKey(id string) (keyring.Key, error) {
	wrapped, err := s.st.UserKey(id)
	if err != nil {
		return keyring.Key{}, err
	}
	return keyring.Unwrap(s.dataKey, wrapped, "user:"+id)
}

func (s *Service) view(u *model.User) (*UserView, error) {
	v := &UserView{User: *u, Role: u.RoleAt(s.now())}
	if s.admins[u.TelegramID] && u.TelegramID != 0 {
		v.Role = model.RoleSuperadmin
	}
	if len(u.Personal) > 0 {
		k, err := s.userKey(u.ID)
		if err == nil {
			if b, err := keyring.Open(k, recPersonal, u.ID, u.Personal); err == nil {
				_ = json.Unmarshal(b, &v.Personal)
			}
		}
	}
	v.User.Personal = nil
	bal, err := s.st.Balance(u.ID)
	if err != nil {
		return nil, err
	}
	v.Balance = bal
	return v, nil
}

// User returns a user with personal fields opened.
func (s *Service) User(ctx context.Context, id string) (*UserView, error) {
	if !model.ValidID(id) {
		return nil, fmt.Errorf("user id %q: %w", id, model.ErrInvalid)
	}
	u, err := s.st.User(id)
	if err != nil {
		return nil, err
	}
	return s.view(u)
}

// FindUser resolves a user id, a Telegram id or a referral code.
func (s *Service) FindUser(ctx context.Context, q string) (*UserView, error) {
	q = strings.TrimSpace(q)
	if model.ValidID(q) {
		return s.User(ctx, q)
	}
	if tg, err := strconv.ParseInt(q, 10, 64); err == nil && tg > 0 {
		u, err := s.st.UserByTelegram(tg)
		if err != nil {
			return nil, err
		}
		return s.view(u)
	}
	u, err := s.st.UserByReferralCode(strings.ToLower(q))
	if err != nil {
		return nil, fmt.Errorf("user %q: %w", q, model.ErrNotFound)
	}
	return s.view(u)
}

// Users lists users.
func (s *Service) Users(ctx context.Context, p store.Page) ([]UserView, string, error) {
	us, next, err := s.st.Users(p)
	if err != nil {
		return nil, "", err
	}
	out := make([]UserView, 0, len(us))
	for i := range us {
		v, err := s.view(&us[i])
		if err != nil {
			return nil, "", err
		}
		out = append(out, *v)
	}
	return out, next, nil
}

// SetLanguage changes a user's language.
func (s *Service) SetLanguage(ctx context.Context, a Actor, userID, lang string) error {
	return s.do(ctx, s.meta(a), store.UpdateUser{UserID: userID, Language: language(lang)}, userID)
}

// Ban bans a user; their credentials stop being served at the next
// reconcile. Unban restores service.
func (s *Service) Ban(ctx context.Context, a Actor, userID, reason string) error {
	return s.do(ctx, s.meta(a), store.SetBanned{UserID: userID, Banned: true, Reason: reason}, userID)
}

// Unban lifts a ban.
func (s *Service) Unban(ctx context.Context, a Actor, userID string) error {
	return s.do(ctx, s.meta(a), store.SetBanned{UserID: userID, Banned: false}, userID)
}

// GrantRole gives a role with an optional expiry; revoke removes it.
func (s *Service) GrantRole(ctx context.Context, a Actor, userID string, role model.Role, until time.Time, revoke bool) error {
	return s.do(ctx, s.meta(a), store.GrantRole{UserID: userID, Role: role, ExpiresAt: until, Revoke: revoke}, userID)
}

// Erase forgets a user (GDPR): see store.EraseUser.
func (s *Service) Erase(ctx context.Context, a Actor, userID string) error {
	cmd, err := s.eraseCommand(userID)
	if err != nil {
		return err
	}
	return s.do(ctx, s.meta(a), cmd, userID)
}

// Export returns everything stored about a user, opened, as JSON-ready data.
func (s *Service) Export(ctx context.Context, userID string) (map[string]any, error) {
	v, err := s.User(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := map[string]any{"user": v}
	ks, _, err := s.st.Keys(store.KeyFilter{UserID: userID}, store.Page{Limit: store.MaxLimit})
	if err != nil {
		return nil, err
	}
	for i := range ks {
		ks[i].Secret = nil
	}
	out["keys"] = ks
	// MTProto secrets are the user's credentials too; like keys, without the
	// sealed secret.
	ps, _, err := s.Proxies(ctx, userID, store.Page{Limit: store.MaxLimit})
	if err != nil {
		return nil, err
	}
	out["proxies"] = ps
	ts, _, err := s.Tickets(ctx, "", userID, store.Page{Limit: store.MaxLimit})
	if err != nil {
		return nil, err
	}
	out["tickets"] = ts
	for name, list := range map[string]func() (any, error){
		"payments": func() (any, error) {
			x, _, err := s.st.Payments(userID, store.Page{Limit: store.MaxLimit})
			return x, err
		},
		"credits": func() (any, error) {
			x, _, err := s.st.Credits(userID, store.Page{Limit: store.MaxLimit})
			return x, err
		},
		"subscriptions": func() (any, error) {
			x, _, err := s.st.Subscriptions(userID, store.Page{Limit: store.MaxLimit})
			return x, err
		},
	} {
		x, err := list()
		if err != nil && !errors.Is(err, model.ErrNotFound) {
			return nil, err
		}
		out[name] = x
	}
	return out, nil
}
