package api

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
	"github.com/usipipo/usipipo/web"
)

func keyType(s string) model.KeyType { return model.KeyType(s) }

// keyWithConfig is a new credential and what the user imports.
type keyWithConfig struct {
	Key    any               `json:"key"`
	Config *app.ClientConfig `json:"config"`
}

func (a *api) listKeys(c *fiber.Ctx) error {
	p, err := page(c)
	if err != nil {
		return err
	}
	f := store.KeyFilter{UserID: c.Query("user_id"), Status: model.KeyStatus(c.Query("status"))}
	if f.Status != "" && !f.Status.Valid() {
		return badRequest("status must be one of active, suspended, expired, revoked.")
	}
	items, next, err := a.svc.Keys(c.UserContext(), f, p)
	if err != nil {
		return err
	}
	return sendRead(c, listOf(items, next))
}

type createKeyRequest struct {
	UserID string        `json:"user_id"`
	Type   string        `json:"type"`
	Name   string        `json:"name,omitempty"`
	Trial  bool          `json:"trial,omitempty"`
	Grant  bool          `json:"grant,omitempty"` // outside the plan, with Limits (admin scope)
	Limits *model.Limits `json:"limits,omitempty"`
}

func needAdminForGrant(c *fiber.Ctx, grant bool) error {
	if grant && principalOf(c).rank < scopeRank(admin) {
		return web.NewProblem(fiber.StatusForbidden, problemType("insufficient-scope"), "Insufficient scope",
			"Granting a credential outside the user's plan needs the admin scope.")
	}
	return nil
}

func (a *api) createKey(c *fiber.Ctx) error {
	var in createKeyRequest
	if err := decodeBody(c, &in); err != nil {
		return err
	}
	if err := needAdminForGrant(c, in.Grant); err != nil {
		return err
	}
	r := app.KeyRequest{UserID: in.UserID, Type: keyType(in.Type), Name: in.Name, Trial: in.Trial, Admin: in.Grant}
	if in.Limits != nil {
		r.Limits = *in.Limits
	}
	return a.issueKey(c, r)
}

func (a *api) issueKey(c *fiber.Ctx, r app.KeyRequest) error {
	if !model.ValidID(r.UserID) {
		return problemFor(invalid("user_id must be a user id"))
	}
	k, err := a.svc.CreateKey(c.UserContext(), principalOf(c).actor, r)
	if err != nil {
		return err
	}
	conf, err := a.svc.KeyConfig(c.UserContext(), k.ID)
	if err != nil {
		return err
	}
	return sendCreated(c, "/api/v1/keys/"+k.ID, keyWithConfig{Key: k, Config: conf})
}

// vpnCreateRequest is the seed's call, kept as it was.
type vpnCreateRequest struct {
	UserID  string `json:"user_id"`
	VPNType string `json:"vpn_type"`
	IsTrial bool   `json:"is_trial"`
}

func (a *api) vpnCreate(c *fiber.Ctx) error {
	var in vpnCreateRequest
	if err := decodeBody(c, &in); err != nil {
		return err
	}
	return a.issueKey(c, app.KeyRequest{UserID: in.UserID, Type: keyType(in.VPNType), Trial: in.IsTrial})
}

func (a *api) getKey(c *fiber.Ctx) error {
	k, err := a.svc.Key(c.UserContext(), c.Params("id"))
	if err != nil {
		return err
	}
	return sendRead(c, k)
}

func (a *api) keyConfig(c *fiber.Ctx) error {
	conf, err := a.svc.KeyConfig(c.UserContext(), c.Params("id"))
	if err != nil {
		return err
	}
	return sendRead(c, conf)
}

func (a *api) keyQR(c *fiber.Ctx) error {
	k, err := a.svc.Key(c.UserContext(), c.Params("id"))
	if err != nil {
		return err
	}
	conf, err := a.svc.KeyConfig(c.UserContext(), k.ID)
	if err != nil {
		return err
	}
	png, err := a.svc.QR(c.UserContext(), conf, k.Version)
	if err != nil {
		return err
	}
	return sendTagged(c, png, "image/png")
}

func (a *api) rotateKey(c *fiber.Ctx) error {
	k, err := a.svc.RotateKey(c.UserContext(), principalOf(c).actor, c.Params("id"))
	if err != nil {
		return err
	}
	conf, err := a.svc.KeyConfig(c.UserContext(), k.ID)
	if err != nil {
		return err
	}
	return c.JSON(keyWithConfig{Key: k, Config: conf})
}

func (a *api) revokeKey(c *fiber.Ctx) error {
	var in reasonRequest
	if err := optionalBody(c, &in); err != nil {
		return err
	}
	id := c.Params("id")
	if err := a.svc.SetKeyStatus(c.UserContext(), principalOf(c).actor, id, model.KeyRevoked, in.Reason); err != nil {
		return err
	}
	k, err := a.svc.Key(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(k)
}

func (a *api) listProxies(c *fiber.Ctx) error {
	p, err := page(c)
	if err != nil {
		return err
	}
	items, next, err := a.svc.Proxies(c.UserContext(), c.Query("user_id"), p)
	if err != nil {
		return err
	}
	return sendRead(c, listOf(items, next))
}

type createProxyRequest struct {
	UserID string        `json:"user_id"`
	Trial  bool          `json:"trial,omitempty"`
	Grant  bool          `json:"grant,omitempty"`
	Limits *model.Limits `json:"limits,omitempty"`
}

func (a *api) createProxy(c *fiber.Ctx) error {
	var in createProxyRequest
	if err := decodeBody(c, &in); err != nil {
		return err
	}
	if err := needAdminForGrant(c, in.Grant); err != nil {
		return err
	}
	if !model.ValidID(in.UserID) {
		return problemFor(invalid("user_id must be a user id"))
	}
	r := app.ProxyRequest{UserID: in.UserID, Trial: in.Trial, Admin: in.Grant}
	if in.Limits != nil {
		r.Limits = *in.Limits
	}
	px, err := a.svc.CreateProxy(c.UserContext(), principalOf(c).actor, r)
	if err != nil {
		return err
	}
	conf, err := a.svc.ProxyConfig(c.UserContext(), px.ID)
	if err != nil {
		return err
	}
	return sendCreated(c, "/api/v1/proxies/"+px.ID, keyWithConfig{Key: px, Config: conf})
}

func (a *api) getProxy(c *fiber.Ctx) error {
	p, err := a.svc.Proxy(c.UserContext(), c.Params("id"))
	if err != nil {
		return err
	}
	return sendRead(c, p)
}

func (a *api) proxyLink(c *fiber.Ctx) error {
	p, err := a.svc.Proxy(c.UserContext(), c.Params("id"))
	if err != nil {
		return err
	}
	conf, err := a.svc.ProxyConfig(c.UserContext(), p.ID)
	if err != nil {
		return err
	}
	return sendRead(c, conf)
}

func (a *api) revokeProxy(c *fiber.Ctx) error {
	var in reasonRequest
	if err := optionalBody(c, &in); err != nil {
		return err
	}
	id := c.Params("id")
	if err := a.svc.SetProxyStatus(c.UserContext(), principalOf(c).actor, id, model.KeyRevoked, in.Reason); err != nil {
		return err
	}
	p, err := a.svc.Proxy(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(p)
}

func (a *api) listAPIKeys(c *fiber.Ctx) error {
	p, err := page(c)
	if err != nil {
		return err
	}
	f, err := apiKeyFilter(c)
	if err != nil {
		return err
	}
	items, next, err := a.svc.ListAPIKeys(c.UserContext(), f, p)
	if err != nil {
		return err
	}
	return sendRead(c, listOf(items, next))
}

type createAPIKeyRequest struct {
	Name      string    `json:"name"`
	Scopes    []string  `json:"scopes"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// createAPIKey makes an API key; the token is in this response only.
func (a *api) createAPIKey(c *fiber.Ctx) error {
	var in createAPIKeyRequest
	if err := decodeBody(c, &in); err != nil {
		return err
	}
	scopes := make([]model.Scope, 0, len(in.Scopes))
	for _, s := range in.Scopes {
		if scopeRank(s) == 0 {
			return problemFor(invalid("scope " + s + " is not one of read, write, admin"))
		}
		scopes = append(scopes, model.Scope(s))
	}
	k, err := a.svc.CreateAPIKey(c.UserContext(), principalOf(c).actor, in.Name, scopes, in.ExpiresAt)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return sendCreated(c, "", k)
}

func (a *api) revokeAPIKey(c *fiber.Ctx) error {
	id := c.Params("id")
	if _, err := a.svc.Store().APIKey(id); err != nil {
		return err
	}
	if err := a.svc.RevokeAPIKey(c.UserContext(), principalOf(c).actor, id); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

type invalidErr string

func (e invalidErr) Error() string { return string(e) + ": " + model.ErrInvalid.Error() }
func (e invalidErr) Unwrap() error { return model.ErrInvalid }

func invalid(s string) error { return invalidErr(s) }
