package panel

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

type auditData struct {
	UserID, Action string
	Entries        []model.AuditEntry
	Next           string
}

// audit lists the audit trail newest first, optionally one user's (and
// one action of that user's).
func (p *panel) audit(c *fiber.Ctx) error {
	d := auditData{UserID: strings.TrimSpace(c.Query("user")), Action: strings.TrimSpace(c.Query("action"))}
	var err error
	d.Entries, d.Next, err = p.svc.Audit(c.UserContext(), store.AuditFilter{UserID: d.UserID, Action: d.Action}, pageOf(c))
	if err != nil {
		return p.fail(c, err)
	}
	return p.page(c, "audit", "Audit log", d)
}
