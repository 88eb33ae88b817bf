package bot

import (
	"context"
	"fmt"
	"slices"
	"strings"

	tele "gopkg.in/telebot.v3"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/store/model"
)

// keys lists the user's keys and MTProto secrets as buttons.
func (r *req) keys() error {
	p, err := r.b.app.Profile(r.ctx, r.user.ID)
	if err != nil {
		return err
	}
	var rows [][]tele.InlineButton
	for _, k := range p.Keys {
		rows = append(rows, row(r.btn(fmt.Sprintf("%s · %s · %s", k.Name, typeName(k.Type), r.t("status."+string(k.Status))), "key", k.ID)))
	}
	for _, x := range p.Proxies {
		rows = append(rows, row(r.btn(fmt.Sprintf("MTProto · %s", r.t("status."+string(x.Status))), "proxy")))
	}
	rows = append(rows, row(r.btn(r.t("btn.new_key"), "new"), r.btn(r.t("btn.trial"), "trial")), r.back())
	text := r.t("keys.title", "n", len(p.Keys)+len(p.Proxies))
	if len(p.Keys)+len(p.Proxies) == 0 {
		text = r.t("keys.none")
	}
	return r.show(text, kb(rows...))
}

// ownKey is the key a callback names, if it is the user's.
func (r *req) ownKey() (*model.Key, error) {
	if len(r.args) != 1 {
		return nil, model.ErrInvalid
	}
	return r.b.app.OwnKey(r.ctx, r.user.ID, r.args[0])
}

func (r *req) keyCard() error {
	k, err := r.ownKey()
	if err != nil {
		return err
	}
	limit := r.t("profile.unlimited")
	if k.Limits.DataCap > 0 {
		limit = size(k.Limits.DataCap)
	}
	text := r.t("key.card", "name", k.Name, "type", typeName(k.Type), "status", r.t("status."+string(k.Status)),
		"expiry", day(k.Limits.ExpiresAt), "used", size(k.PeriodUsage()), "cap", limit, "id", k.ID)
	var rows [][]tele.InlineButton
	if k.Status != model.KeyRevoked {
		rows = append(rows, row(r.btn(r.t("btn.config"), "key.conf", k.ID), r.btn(r.t("btn.rename"), "key.ren", k.ID)),
			row(r.btn(r.t("btn.rotate"), "key.rot", k.ID), r.btn(r.t("btn.revoke"), "key.rev", k.ID)))
	}
	rows = append(rows, row(r.btn(r.t("btn.back"), "keys")))
	return r.show(text, kb(rows...))
}

func (r *req) keyConfig() error {
	k, err := r.ownKey()
	if err != nil {
		return err
	}
	return r.b.sendKey(r.ctx, r.chat, r.lang, k)
}

// keyRename asks for the new name; the next text message is it.
func (r *req) keyRename() error {
	k, err := r.ownKey()
	if err != nil {
		return err
	}
	if err := r.b.saveState(r.tgID, &convState{Flow: "rename", Data: map[string]string{"key": k.ID}}); err != nil {
		return err
	}
	return r.say(r.t("key.rename_ask", "name", k.Name), nil)
}

func (r *req) renameStep() error {
	id := r.state.Data["key"]
	if _, err := r.b.app.OwnKey(r.ctx, r.user.ID, id); err != nil {
		r.b.clearState(r.tgID)
		return err
	}
	name := strings.TrimSpace(r.text)
	if name == "" || len(name) > 64 {
		return r.say(r.t("key.rename_bad"), nil) // the flow stays: try again or /cancel
	}
	if err := r.b.app.RenameKey(r.ctx, app.BotActor(r.tgID), id, name); err != nil {
		return err
	}
	if err := r.b.clearState(r.tgID); err != nil {
		return err
	}
	return r.say(r.t("key.renamed", "name", name), kb(row(r.btn(r.t("btn.keys"), "keys"))))
}

// keyRotate replaces the key's secret and sends the new configuration.
func (r *req) keyRotate() error {
	k, err := r.ownKey()
	if err != nil {
		return err
	}
	k, err = r.b.app.RotateKeyOnce(r.ctx, app.BotActor(r.tgID), onceKey(r.ctx, r.tgID, "rotate:"+k.ID), k.ID)
	if err != nil {
		return err
	}
	if err := r.say(r.t("key.rotated", "name", k.Name), nil); err != nil {
		return err
	}
	return r.b.sendKey(r.ctx, r.chat, r.lang, k)
}

func (r *req) keyRevoke() error {
	k, err := r.ownKey()
	if err != nil {
		return err
	}
	return r.show(r.t("key.revoke_confirm", "name", k.Name),
		kb(row(r.btn(r.t("btn.yes_revoke"), "key.revok", k.ID), r.btn(r.t("btn.no"), "key", k.ID))))
}

func (r *req) keyRevokeConfirmed() error {
	k, err := r.ownKey()
	if err != nil {
		return err
	}
	if err := r.b.app.SetKeyStatus(r.ctx, app.BotActor(r.tgID), k.ID, model.KeyRevoked, "revoked by the user"); err != nil {
		return err
	}
	return r.show(r.t("key.revoked", "name", k.Name), kb(row(r.btn(r.t("btn.keys"), "keys"))))
}

// trial offers the protocols whose free trial the user still has.
func (r *req) trial() error {
	pol := r.b.app.Policy()
	if !pol.TrialsEnabled || pol.TrialDays == 0 {
		return r.show(r.t("error.trial_disabled"), kb(r.back()))
	}
	var rows [][]tele.InlineButton
	for _, t := range pol.TrialProtocols {
		if !slices.Contains(r.user.TrialsUsed, t) && typeCode[t] != "" {
			rows = append(rows, row(r.btn(typeName(t), "trial.go", typeCode[t])))
		}
	}
	if len(rows) == 0 {
		return r.show(r.t("error.trial_used"), kb(row(r.btn(r.t("btn.buy"), "buy")), r.back()))
	}
	rows = append(rows, r.back())
	return r.show(r.t("trial.choose", "days", pol.TrialDays, "data", size(pol.TrialDataBytes)), kb(rows...))
}

func (r *req) trialGo() error { return r.issue(true) }

// newKey offers the protocols of the user's plan.
func (r *req) newKey() error {
	p, err := r.b.app.Profile(r.ctx, r.user.ID)
	if err != nil {
		return err
	}
	if p.Plan == nil {
		return r.show(r.t("new.no_plan"), kb(row(r.btn(r.t("btn.buy"), "buy"), r.btn(r.t("btn.trial"), "trial")), r.back()))
	}
	var rows [][]tele.InlineButton
	for _, t := range p.Plan.Protocols {
		if typeCode[t] != "" {
			rows = append(rows, row(r.btn(typeName(t), "new.go", typeCode[t])))
		}
	}
	rows = append(rows, r.back())
	return r.show(r.t("new.choose", "plan", p.Plan.Name, "max", p.Plan.MaxKeys+p.User.ExtraSlots), kb(rows...))
}

func (r *req) newKeyGo() error { return r.issue(false) }

// issue creates a trial or plan credential of the protocol in the callback
// and sends it.
func (r *req) issue(trial bool) error {
	if len(r.args) != 1 {
		return model.ErrInvalid
	}
	t, ok := codeType(r.args[0])
	if !ok {
		return model.ErrInvalid
	}
	cfg, version, err := r.b.issue(r.ctx, r.tgID, r.user.ID, t, trial)
	if err != nil {
		return err
	}
	return r.b.sendConfig(r.ctx, r.chat, r.lang, cfg, version)
}

// issue creates a key or MTProto secret (a trial, or within the plan) and
// renders its configuration.
func (b *Bot) issue(ctx context.Context, tg int64, userID string, t model.KeyType, trial bool) (*app.ClientConfig, uint64, error) {
	a := app.BotActor(tg)
	if t == model.MTProto {
		p, err := b.app.CreateProxy(ctx, a, app.ProxyRequest{UserID: userID, Trial: trial, Once: onceKey(ctx, tg, "issue:"+string(t))})
		if err != nil {
			return nil, 0, err
		}
		cfg, err := b.app.ProxyConfig(ctx, p.ID)
		return cfg, p.Version, err
	}
	k, err := b.app.CreateKey(ctx, a, app.KeyRequest{UserID: userID, Type: t, Trial: trial, Once: onceKey(ctx, tg, "issue:"+string(t))})
	if err != nil {
		return nil, 0, err
	}
	cfg, err := b.app.KeyConfig(ctx, k.ID)
	return cfg, k.Version, err
}

// proxy sends the user's MTProto links, or offers one.
func (r *req) proxy() error {
	p, err := r.b.app.Profile(r.ctx, r.user.ID)
	if err != nil {
		return err
	}
	sentAny := false
	for _, x := range p.Proxies {
		if x.Status != model.KeyActive {
			continue
		}
		cfg, err := r.b.app.ProxyConfig(r.ctx, x.ID)
		if err != nil {
			return err
		}
		if err := r.b.sendConfig(r.ctx, r.chat, r.lang, cfg, x.Version); err != nil {
			return err
		}
		sentAny = true
	}
	if sentAny {
		return nil
	}
	var rows [][]tele.InlineButton
	if !slices.Contains(r.user.TrialsUsed, model.MTProto) {
		rows = append(rows, row(r.btn(r.t("btn.trial"), "trial.go", typeCode[model.MTProto])))
	}
	if p.Plan != nil && p.Plan.Allows(model.MTProto) {
		rows = append(rows, row(r.btn(r.t("btn.new_key"), "new.go", typeCode[model.MTProto])))
	}
	rows = append(rows, row(r.btn(r.t("btn.buy"), "buy")), r.back())
	return r.show(r.t("proxy.none"), kb(rows...))
}

// sendKey renders a key's configuration and sends it.
func (b *Bot) sendKey(ctx context.Context, chat int64, lang string, k *model.Key) error {
	cfg, err := b.app.KeyConfig(ctx, k.ID)
	if err != nil {
		return err
	}
	return b.sendConfig(ctx, chat, lang, cfg, k.Version)
}

// sendConfig hands a configuration over the way its client imports it: a
// WireGuard file, an ss:// link, a tg://proxy link — each with its QR code.
func (b *Bot) sendConfig(ctx context.Context, chat int64, lang string, cfg *app.ClientConfig, version uint64) error {
	qr, err := b.app.QR(ctx, cfg, version)
	if err != nil {
		return err
	}
	switch cfg.Type {
	case model.WireGuard:
		if err := b.tg.upload(ctx, "sendDocument", "document", chat, cfg.Filename, []byte(cfg.Text), b.cat.T(lang, "config.wireguard")); err != nil {
			return err
		}
	case model.Outline:
		text := b.cat.T(lang, "config.outline", "link", cfg.Text)
		if cfg.Dynamic != "" {
			text += "\n\n" + b.cat.T(lang, "config.outline_dynamic", "link", cfg.Dynamic)
		}
		if _, err := b.tg.send(ctx, chat, text, nil); err != nil {
			return err
		}
	case model.MTProto:
		var k *tele.ReplyMarkup
		if strings.HasPrefix(cfg.Link, "https://") {
			k = kb(row(urlBtn(b.cat.T(lang, "btn.connect"), cfg.Link)))
		}
		if _, err := b.tg.send(ctx, chat, b.cat.T(lang, "config.mtproto", "link", cfg.Text), k); err != nil {
			return err
		}
	}
	return b.tg.upload(ctx, "sendPhoto", "photo", chat, "qr.png", qr, b.cat.T(lang, "config.qr"))
}
