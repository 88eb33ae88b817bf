package bot

import (
	"encoding/json"
	"fmt"

	"github.com/usipipo/usipipo/app"
)

// privacy offers the user their data and the deletion of their account.
func (r *req) privacy() error {
	if r.user == nil || r.user.Erased {
		return r.show(r.t("privacy.none"), nil)
	}
	return r.show(r.t("privacy.text"), kb(
		row(r.btn(r.t("btn.export"), "priv.exp")),
		row(r.btn(r.t("btn.delete_account"), "priv.del")),
		r.back()))
}

// privacyExport sends everything stored about the user as a JSON document.
func (r *req) privacyExport() error {
	if r.user == nil || r.user.Erased {
		return r.show(r.t("privacy.none"), nil)
	}
	data, err := r.b.app.Export(r.ctx, r.user.ID)
	if err != nil {
		return err
	}
	raw, err := json.MarshalIndent(data, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the export: %w", err)
	}
	return r.b.tg.upload(r.ctx, "sendDocument", "document", r.chat, "usipipo-"+r.user.ID+".json", raw, r.t("privacy.export_caption"))
}

func (r *req) privacyDelete() error {
	if r.user == nil || r.user.Erased {
		return r.show(r.t("privacy.none"), nil)
	}
	return r.show(r.t("privacy.delete_confirm"), kb(row(r.btn(r.t("btn.yes_delete"), "priv.delok"), r.btn(r.t("btn.no"), "priv"))))
}

// privacyDeleteConfirmed erases the account (GDPR): credentials stop being
// served and personal data becomes unreadable.
func (r *req) privacyDeleteConfirmed() error {
	if r.user == nil || r.user.Erased {
		return r.show(r.t("privacy.none"), nil)
	}
	if err := r.b.app.Erase(r.ctx, app.BotActor(r.tgID), r.user.ID); err != nil {
		return err
	}
	if err := r.b.clearState(r.tgID); err != nil {
		return err
	}
	return r.show(r.t("privacy.deleted"), nil)
}
