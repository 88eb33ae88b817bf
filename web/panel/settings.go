package panel

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/app/pay"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

const mib = 1 << 20

type settingsData struct {
	Policy         app.Policy
	TrialDataMiB   uint64
	Plans          []model.Plan
	BotTokenSet    bool
	QvaPaySet      bool
	PaymentsOn     bool
	Protocols      []string
	TrialProtocols map[string]bool
}

func (p *panel) settings(c *fiber.Ctx) error {
	pol := p.svc.Policy()
	d := settingsData{Policy: pol, TrialDataMiB: pol.TrialDataBytes / mib, PaymentsOn: p.o.Payments != nil,
		Protocols: []string{string(model.WireGuard), string(model.Outline), string(model.MTProto)}, TrialProtocols: map[string]bool{}}
	for _, t := range pol.TrialProtocols {
		d.TrialProtocols[string(t)] = true
	}
	var err error
	if d.Plans, _, err = p.svc.Plans(c.UserContext(), store.Page{Limit: store.MaxLimit}); err != nil {
		return p.fail(c, err)
	}
	if d.BotTokenSet, err = p.svc.SecretIsSet(app.SettingBotToken); err != nil {
		return p.fail(c, err)
	}
	if d.QvaPaySet, err = p.svc.SecretIsSet(app.SettingQvaPay); err != nil {
		return p.fail(c, err)
	}
	return p.page(c, "settings", "Settings", d)
}

// protocols reads the checked protocol boxes of a form.
func protocols(c *fiber.Ctx) []model.KeyType {
	var out []model.KeyType
	for _, t := range []model.KeyType{model.WireGuard, model.Outline, model.MTProto} {
		if c.FormValue("proto_"+string(t)) != "" {
			out = append(out, t)
		}
	}
	return out
}

func formUint(c *fiber.Ctx, name string) (uint64, error) {
	v := strings.TrimSpace(c.FormValue(name))
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s must be a whole number ≥ 0: %w", name, model.ErrInvalid)
	}
	return n, nil
}

// savePolicy replaces the trial policy; fields the form does not show
// (the Outline prefix) keep their values.
func (p *panel) savePolicy(c *fiber.Ctx) error {
	pol := p.svc.Policy()
	var vals [4]uint64
	for i, name := range []string{"trial_days", "trial_data_mib", "referral_credits", "max_conns_default"} {
		v, err := formUint(c, name)
		if err != nil || v > 1<<40 {
			return p.fail(c, fmt.Errorf("%s out of range: %w", name, model.ErrInvalid))
		}
		vals[i] = v
	}
	pol.TrialsEnabled = c.FormValue("trials_enabled") != ""
	pol.TrialDays, pol.TrialDataBytes = int(vals[0]), vals[1]*mib
	pol.ReferralCredits, pol.MaxConnsDefault = int64(vals[2]), int(vals[3])
	pol.TrialProtocols = protocols(c)
	if err := p.svc.SetPolicy(c.UserContext(), p.actor(c), pol); err != nil {
		return p.fail(c, err)
	}
	p.flash(c, "Trial policy saved.")
	return p.redirect(c, "/settings")
}

// savePlan creates a plan, or replaces the one named by the form's id.
func (p *panel) savePlan(c *fiber.Ctx) error {
	spec := app.PlanSpec{ID: strings.TrimSpace(c.FormValue("id")), Name: strings.TrimSpace(c.FormValue("name")),
		Protocols: protocols(c), Inactive: c.FormValue("active") == ""}
	var vals [6]uint64
	for i, name := range []string{"duration_days", "data_cap_gib", "max_keys", "max_conns", "price_stars", "price_usd_cents"} {
		v, err := formUint(c, name)
		if err != nil || v > 1<<40 {
			return p.fail(c, fmt.Errorf("%s out of range: %w", name, model.ErrInvalid))
		}
		vals[i] = v
	}
	spec.DurationDays, spec.DataCapBytes, spec.MaxKeys = int(vals[0]), vals[1]<<30, int(vals[2])
	spec.MaxConns, spec.PriceStars, spec.PriceUSDCents = int(vals[3]), int64(vals[4]), int64(vals[5])
	pl, err := p.svc.PutPlan(c.UserContext(), p.actor(c), spec)
	if err != nil {
		return p.fail(c, err)
	}
	p.flash(c, "Plan "+pl.Name+" saved.")
	return p.redirect(c, "/settings")
}

// saveSecrets stores the secrets typed into the form; an empty field
// leaves its secret as it is. Secrets are never shown back.
func (p *panel) saveSecrets(c *fiber.Ctx) error {
	var saved []string
	if tok := strings.TrimSpace(c.FormValue("bot_token")); tok != "" {
		if err := p.svc.SetBotToken(c.UserContext(), p.actor(c), tok); err != nil {
			return p.fail(c, err)
		}
		saved = append(saved, "bot token (used from the next start)")
	}
	appID, secret := strings.TrimSpace(c.FormValue("qvapay_app_id")), strings.TrimSpace(c.FormValue("qvapay_secret"))
	if appID != "" || secret != "" {
		if p.o.Payments == nil {
			return p.fail(c, fmt.Errorf("payments are not configured on this node: %w", model.ErrState))
		}
		if err := p.o.Payments.SetQvaPayCredentials(c.UserContext(), pay.Actor(p.actor(c)), appID, secret); err != nil {
			return p.fail(c, err)
		}
		saved = append(saved, "QvaPay credentials")
	}
	if len(saved) == 0 {
		p.flash(c, "Nothing to save: empty fields keep their secrets.")
	} else {
		p.flash(c, "Saved: "+strings.Join(saved, ", ")+".")
	}
	return p.redirect(c, "/settings")
}
