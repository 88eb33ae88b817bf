package api

import (
	"github.com/gofiber/fiber/v2"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/app/pay"
)

// Settings: the policy and the catalogue are read and replaced whole;
// secrets (the bot token, QvaPay credentials) are write-only — reads say
// only whether each is set.

type secretState struct {
	Set bool `json:"set"`
}

type settingsResponse struct {
	Policy    app.Policy             `json:"policy"`
	Catalogue *pay.Catalogue         `json:"catalogue,omitempty"` // absent when payments do not run here
	Secrets   map[string]secretState `json:"secrets"`
}

func (a *api) getSettings(c *fiber.Ctx) error {
	out := settingsResponse{Policy: a.svc.Policy(), Secrets: map[string]secretState{}}
	if a.o.Pay != nil {
		cat := a.o.Pay.Catalogue()
		out.Catalogue = &cat
	}
	for _, name := range []string{app.SettingBotToken, app.SettingQvaPay} {
		set, err := a.svc.SecretIsSet(name)
		if err != nil {
			return err
		}
		out.Secrets[name] = secretState{Set: set}
	}
	return sendRead(c, out)
}

func (a *api) putPolicy(c *fiber.Ctx) error {
	var in app.Policy
	if err := decodeBody(c, &in); err != nil {
		return err
	}
	if err := a.svc.SetPolicy(c.UserContext(), principalOf(c).actor, in); err != nil {
		return err
	}
	return c.JSON(a.svc.Policy())
}

func (a *api) putCatalogue(c *fiber.Ctx) error {
	if a.o.Pay == nil {
		return unavailable("Payments are not running on this node.")
	}
	var in pay.Catalogue
	if err := decodeBody(c, &in); err != nil {
		return err
	}
	if err := a.o.Pay.SetCatalogue(c.UserContext(), pay.Actor(principalOf(c).actor), in); err != nil {
		return err
	}
	return c.JSON(a.o.Pay.Catalogue())
}

type botTokenRequest struct {
	Token string `json:"token"`
}

func (a *api) putBotToken(c *fiber.Ctx) error {
	var in botTokenRequest
	if err := decodeBody(c, &in); err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	if err := a.svc.SetBotToken(c.UserContext(), principalOf(c).actor, in.Token); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

type qvaPayRequest struct {
	AppID  string `json:"app_id"`
	Secret string `json:"secret"`
}

func (a *api) putQvaPay(c *fiber.Ctx) error {
	if a.o.Pay == nil {
		return unavailable("Payments are not running on this node.")
	}
	var in qvaPayRequest
	if err := decodeBody(c, &in); err != nil {
		return err
	}
	if err := a.o.Pay.SetQvaPayCredentials(c.UserContext(), pay.Actor(principalOf(c).actor), in.AppID, in.Secret); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}
