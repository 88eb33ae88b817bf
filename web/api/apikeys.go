package api

import (
	"github.com/gofiber/fiber/v2"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// apiKeyFilter reads the API key list's filters: scope= (keys holding that
// scope) and status= (active, revoked, or expired and not revoked).
func apiKeyFilter(c *fiber.Ctx) (store.APIKeyFilter, error) {
	f := store.APIKeyFilter{Scope: model.Scope(c.Query("scope")), State: c.Query("status")}
	if f.Scope != "" && scopeRank(string(f.Scope)) == 0 {
		return f, badRequest("scope must be read, write or admin.")
	}
	switch f.State {
	case "", store.APIKeyActive, store.APIKeyRevoked, store.APIKeyExpired:
	default:
		return f, badRequest("status must be active, revoked or expired.")
	}
	return f, nil
}
