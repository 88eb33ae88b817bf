package api

import (
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/usipipo/usipipo/app"
)

// freeProxies serves GET /api/v1/proxies/free?country=&limit=: the node's
// best working public Shadowsocks proxies (from Shadowmere, checked by the
// node itself), each with its ss:// URL.
func (a *api) freeProxies(c *fiber.Ctx) error {
	n := 0
	if l := c.Query("limit"); l != "" {
		var err error
		if n, err = strconv.Atoi(l); err != nil || n < 1 || n > app.MaxFreeProxies {
			return badRequest("limit must be an integer from 1 to " + strconv.Itoa(app.MaxFreeProxies) + ".")
		}
	}
	items, err := a.svc.FreeProxies(c.UserContext(), c.Query("country"), n)
	if err != nil {
		return err
	}
	return sendRead(c, struct {
		Items []app.FreeProxy `json:"items"`
	}{items})
}
