package admin

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// Parameters of the calls. The CLI builds them from its flags.
type (
	// UserAdd registers a user.
	UserAdd struct {
		TelegramID int64  `json:"telegram_id"`
		Username   string `json:"username,omitempty"`
		FirstName  string `json:"first_name,omitempty"`
		Language   string `json:"language,omitempty"`
		Referral   string `json:"referral,omitempty"`
	}
	// Target names a record by id (or, for users, a Telegram id or referral code).
	Target struct {
		ID     string `json:"id"`
		Reason string `json:"reason,omitempty"`
	}
	// List pages a list, optionally a user's.
	List struct {
		UserID string `json:"user_id,omitempty"`
		Status string `json:"status,omitempty"`
		After  string `json:"after,omitempty"`
		Limit  int    `json:"limit,omitempty"`
	}
	// PlanGrant gives a user a plan.
	PlanGrant struct {
		UserID string `json:"user_id"`
		PlanID string `json:"plan_id"`
		Months int    `json:"months,omitempty"`
		Days   int    `json:"days,omitempty"`
	}
	// PlanRevoke ends a user's plan now; SubID empty names the current one.
	PlanRevoke struct {
		UserID string `json:"user_id"`
		SubID  string `json:"sub_id,omitempty"`
		Reason string `json:"reason,omitempty"`
	}
	// KeyAdd issues a key.
	KeyAdd struct {
		UserID string        `json:"user_id"`
		Type   model.KeyType `json:"type"`
		Name   string        `json:"name,omitempty"`
		Trial  bool          `json:"trial,omitempty"`
		Plan   bool          `json:"plan,omitempty"` // within the user's plan; default is an operator's grant
		Limits model.Limits  `json:"limits"`
	}
	// ProxyAdd issues an MTProto secret.
	ProxyAdd struct {
		UserID string       `json:"user_id"`
		Trial  bool         `json:"trial,omitempty"`
		Plan   bool         `json:"plan,omitempty"`
		Limits model.Limits `json:"limits"`
	}
	// FreeProxies asks for working free proxies (app.Service.FreeProxies).
	FreeProxies struct {
		Country string `json:"country,omitempty"`
		Limit   int    `json:"limit,omitempty"`
	}
	// APIKeyAdd creates an API key.
	APIKeyAdd struct {
		Name    string        `json:"name"`
		Scopes  []model.Scope `json:"scopes"`
		Expires time.Time     `json:"expires,omitzero"`
	}
	// Passphrase carries the backup passphrase the CLI read.
	Passphrase struct {
		Passphrase string `json:"passphrase"`
	}
	// Page is a list's items and the cursor of the next page.
	Page[T any] struct {
		Items []T    `json:"items"`
		Next  string `json:"next,omitempty"`
	}
	// KeyWithConfig is a new credential and what the user imports.
	KeyWithConfig struct {
		Key    any               `json:"key"`
		Config *app.ClientConfig `json:"config"`
	}
	// UserDetail is a user and their credentials.
	UserDetail struct {
		User    *app.UserView `json:"user"`
		Keys    []model.Key   `json:"keys"`
		Proxies []model.Proxy `json:"proxies"`
	}
)

var errInvalid = model.ErrInvalid

func page(l List) store.Page { return store.Page{After: l.After, Limit: l.Limit} }

// dispatch runs one call against the service layer.
func (s *Server) dispatch(ctx context.Context, c *call) (any, error) {
	svc, a := s.svc, app.ActorCLI
	switch c.req.Method {
	case "user.add":
		var p UserAdd
		if err := c.params(&p); err != nil {
			return nil, err
		}
		return svc.RegisterUser(ctx, a, app.NewUser{TelegramID: p.TelegramID, Username: p.Username,
			FirstName: p.FirstName, Language: p.Language, ReferralCode: p.Referral})
	case "user.list":
		var p List
		if err := c.params(&p); err != nil {
			return nil, err
		}
		items, next, err := svc.Users(ctx, page(p))
		return Page[app.UserView]{items, next}, err
	case "user.show":
		return s.userShow(ctx, c)
	case "user.export", "user.erase":
		return s.userPrivacy(ctx, c)
	case "user.ban", "user.unban":
		p, u, err := s.targetUser(ctx, c)
		if err != nil {
			return nil, err
		}
		if c.req.Method == "user.ban" {
			err = svc.Ban(ctx, a, u.ID, p.Reason)
		} else {
			err = svc.Unban(ctx, a, u.ID)
		}
		if err != nil {
			return nil, err
		}
		return svc.User(ctx, u.ID)
	case "plan.add":
		var p app.PlanSpec
		if err := c.params(&p); err != nil {
			return nil, err
		}
		return svc.PutPlan(ctx, a, p)
	case "plan.list":
		var p List
		if err := c.params(&p); err != nil {
			return nil, err
		}
		items, next, err := svc.Plans(ctx, page(p))
		return Page[model.Plan]{items, next}, err
	case "plan.grant":
		var p PlanGrant
		if err := c.params(&p); err != nil {
			return nil, err
		}
		u, err := svc.FindUser(ctx, p.UserID)
		if err != nil {
			return nil, err
		}
		return svc.GrantPlan(ctx, a, u.ID, p.PlanID, p.Months, p.Days)
	case "plan.revoke":
		var p PlanRevoke
		if err := c.params(&p); err != nil {
			return nil, err
		}
		u, err := svc.FindUser(ctx, p.UserID)
		if err != nil {
			return nil, err
		}
		return svc.RevokePlan(ctx, a, u.ID, p.SubID, p.Reason)
	}
	return s.dispatchCredentials(ctx, c)
}

// targetUser reads a call's Target and finds the user it names (a user
// id, a Telegram id or a referral code).
func (s *Server) targetUser(ctx context.Context, c *call) (Target, *app.UserView, error) {
	var p Target
	if err := c.params(&p); err != nil {
		return p, nil, err
	}
	u, err := s.svc.FindUser(ctx, p.ID)
	return p, u, err
}

func (s *Server) userShow(ctx context.Context, c *call) (any, error) {
	_, u, err := s.targetUser(ctx, c)
	if err != nil {
		return nil, err
	}
	keys, _, err := s.svc.Keys(ctx, store.KeyFilter{UserID: u.ID}, store.Page{Limit: store.MaxLimit})
	if err != nil {
		return nil, err
	}
	proxies, _, err := s.svc.Proxies(ctx, u.ID, store.Page{Limit: store.MaxLimit})
	if err != nil {
		return nil, err
	}
	return UserDetail{User: u, Keys: keys, Proxies: proxies}, nil
}

// userPrivacy exports (the document the API and panel export) or erases a
// user (GDPR). The erase answers with the user as it now stands, so the
// operator sees what was kept; erasing twice is the service's ErrErased.
func (s *Server) userPrivacy(ctx context.Context, c *call) (any, error) {
	_, u, err := s.targetUser(ctx, c)
	if err != nil {
		return nil, err
	}
	if c.req.Method == "user.export" {
		return s.svc.Export(ctx, u.ID)
	}
	if err := s.svc.Erase(ctx, app.ActorCLI, u.ID); err != nil {
		return nil, err
	}
	return s.svc.User(ctx, u.ID)
}

func (s *Server) dispatchCredentials(ctx context.Context, c *call) (any, error) {
	svc, a := s.svc, app.ActorCLI
	switch c.req.Method {
	case "key.add":
		var p KeyAdd
		if err := c.params(&p); err != nil {
			return nil, err
		}
		u, err := svc.FindUser(ctx, p.UserID)
		if err != nil {
			return nil, err
		}
		k, err := svc.CreateKey(ctx, a, app.KeyRequest{UserID: u.ID, Type: p.Type, Name: p.Name, Trial: p.Trial,
			Admin: !p.Trial && !p.Plan, Limits: p.Limits})
		if err != nil {
			return nil, err
		}
		conf, err := svc.KeyConfig(ctx, k.ID)
		return KeyWithConfig{Key: k, Config: conf}, err
	case "key.list":
		var p List
		if err := c.params(&p); err != nil {
			return nil, err
		}
		owner, err := s.listOwner(ctx, p.UserID)
		if err != nil {
			return nil, err
		}
		items, next, err := svc.Keys(ctx, store.KeyFilter{UserID: owner, Status: model.KeyStatus(p.Status)}, page(p))
		return Page[model.Key]{items, next}, err
	case "key.revoke":
		var p Target
		if err := c.params(&p); err != nil {
			return nil, err
		}
		if err := svc.SetKeyStatus(ctx, a, p.ID, model.KeyRevoked, p.Reason); err != nil {
			return nil, err
		}
		return svc.Key(ctx, p.ID)
	case "key.config":
		var p Target
		if err := c.params(&p); err != nil {
			return nil, err
		}
		return svc.KeyConfig(ctx, p.ID)
	case "proxy.add":
		var p ProxyAdd
		if err := c.params(&p); err != nil {
			return nil, err
		}
		u, err := svc.FindUser(ctx, p.UserID)
		if err != nil {
			return nil, err
		}
		px, err := svc.CreateProxy(ctx, a, app.ProxyRequest{UserID: u.ID, Trial: p.Trial, Admin: !p.Trial && !p.Plan, Limits: p.Limits})
		if err != nil {
			return nil, err
		}
		conf, err := svc.ProxyConfig(ctx, px.ID)
		return KeyWithConfig{Key: px, Config: conf}, err
	case "proxy.list":
		var p List
		if err := c.params(&p); err != nil {
			return nil, err
		}
		owner, err := s.listOwner(ctx, p.UserID)
		if err != nil {
			return nil, err
		}
		items, next, err := svc.Proxies(ctx, owner, page(p))
		return Page[model.Proxy]{items, next}, err
	case "proxy.free":
		var p FreeProxies
		if err := c.params(&p); err != nil {
			return nil, err
		}
		return svc.FreeProxies(ctx, p.Country, p.Limit)
	case "proxy.revoke":
		var p Target
		if err := c.params(&p); err != nil {
			return nil, err
		}
		return nil, svc.SetProxyStatus(ctx, a, p.ID, model.KeyRevoked, p.Reason)
	}
	return s.dispatchNode(ctx, c)
}

// listOwner resolves the user a list is narrowed to — a user id, Telegram id
// or referral code, as every other verb takes — to the id the indexes hold,
// so that "key list --user 123" finds what "key add --user 123" made and an
// unknown user is an error rather than an empty list. "" lists everyone's.
func (s *Server) listOwner(ctx context.Context, q string) (string, error) {
	if q == "" {
		return "", nil
	}
	u, err := s.svc.FindUser(ctx, q)
	if err != nil {
		return "", err
	}
	return u.ID, nil
}

func (s *Server) dispatchNode(ctx context.Context, c *call) (any, error) {
	svc, a := s.svc, app.ActorCLI
	switch c.req.Method {
	case "apikey.add":
		var p APIKeyAdd
		if err := c.params(&p); err != nil {
			return nil, err
		}
		return svc.CreateAPIKey(ctx, a, p.Name, p.Scopes, p.Expires)
	case "apikey.list":
		var p List
		if err := c.params(&p); err != nil {
			return nil, err
		}
		items, next, err := svc.APIKeys(ctx, page(p))
		return Page[model.APIKey]{items, next}, err
	case "apikey.revoke":
		var p Target
		if err := c.params(&p); err != nil {
			return nil, err
		}
		return nil, svc.RevokeAPIKey(ctx, a, p.ID)
	case "admin.reset-password":
		var p Target
		if err := c.params(&p); err != nil {
			return nil, err
		}
		pw, err := svc.ResetAdminPassword(ctx, a, p.ID)
		return map[string]string{"username": nonEmpty(p.ID, app.DefaultAdmin), "password": pw}, err
	case "admin.reset-totp":
		return s.resetTOTP(ctx, c)
	case "node.status":
		return s.node.Status(ctx)
	case "node.upgrade":
		return s.upgrade(ctx, c)
	case "node.check":
		return map[string]string{"status": "ok"}, s.node.Check(ctx)
	case "backup.create":
		var p Passphrase
		if err := c.params(&p); err != nil {
			return nil, err
		}
		return nil, c.stream(func(w io.Writer) error { return s.node.Backup(ctx, w, []byte(p.Passphrase)) })
	case "backup.restore":
		var p Passphrase
		if err := c.params(&p); err != nil {
			return nil, err
		}
		if !c.req.Stream {
			return nil, fmt.Errorf("backup.restore needs the backup as a stream: %w", errInvalid)
		}
		return s.node.Restore(ctx, c.body, []byte(p.Passphrase))
	case "pay.qvapay":
		return s.payQvaPay(ctx, c)
	}
	return nil, fmt.Errorf("unknown method %q: %w", strings.TrimSpace(c.req.Method), errInvalid)
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
