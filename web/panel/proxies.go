package panel

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/store/model"
)

// freeShown is how many free proxies the page lists.
const freeShown = 20

type proxiesData struct {
	UserID, Country string
	Proxies         []model.Proxy
	Next            string
	FreeOn          bool
	Free            []app.FreeProxy
}

// proxies lists MTProto secrets (all, or a user's) and the checked free
// Shadowsocks proxies from the Shadowmere list.
func (p *panel) proxies(c *fiber.Ctx) error {
	d := proxiesData{UserID: strings.TrimSpace(c.Query("user")), Country: strings.TrimSpace(c.Query("country")), FreeOn: true}
	var err error
	if d.Proxies, d.Next, err = p.svc.Proxies(c.UserContext(), d.UserID, pageOf(c)); err != nil {
		return p.fail(c, err)
	}
	d.Free, err = p.svc.FreeProxies(c.UserContext(), d.Country, freeShown)
	if errors.Is(err, app.ErrFreeProxiesOff) {
		d.FreeOn, err = false, nil
	}
	if err != nil {
		return p.fail(c, err)
	}
	return p.page(c, "proxies", "Proxies", d)
}

func (p *panel) createProxy(c *fiber.Ctx) error {
	r := app.ProxyRequest{UserID: strings.TrimSpace(c.FormValue("user"))}
	r.Trial, r.Admin = grantFrom(c)
	px, err := p.svc.CreateProxy(c.UserContext(), p.actor(c), r)
	if err != nil {
		return p.fail(c, err)
	}
	p.flash(c, "MTProto secret "+px.ID+" created.")
	return p.redirect(c, "/proxies/"+px.ID)
}

type proxyData struct {
	Proxy  *model.Proxy
	Config *app.ClientConfig
}

func (p *panel) proxy(c *fiber.Ctx) error {
	px, err := p.svc.Proxy(c.UserContext(), c.Params("id"))
	if err != nil {
		return p.fail(c, err)
	}
	d := proxyData{Proxy: px}
	if px.Status != model.KeyRevoked {
		if d.Config, err = p.svc.ProxyConfig(c.UserContext(), px.ID); err != nil {
			return p.fail(c, err)
		}
	}
	return p.page(c, "proxy", "MTProto secret "+px.ID, d)
}

func (p *panel) proxyQR(c *fiber.Ctx) error {
	px, err := p.svc.Proxy(c.UserContext(), c.Params("id"))
	if err != nil {
		return p.fail(c, err)
	}
	if px.Status == model.KeyRevoked {
		return p.fail(c, fmt.Errorf("secret %s is revoked: %w", px.ID, model.ErrNotFound))
	}
	conf, err := p.svc.ProxyConfig(c.UserContext(), px.ID)
	if err != nil {
		return p.fail(c, err)
	}
	return p.sendQR(c, conf, px.Version)
}

func (p *panel) revokeProxy(c *fiber.Ctx) error {
	id := c.Params("id")
	if err := p.svc.SetProxyStatus(c.UserContext(), p.actor(c), id, model.KeyRevoked, strings.TrimSpace(c.FormValue("reason"))); err != nil {
		return p.fail(c, err)
	}
	p.flash(c, "MTProto secret revoked.")
	return p.redirect(c, "/proxies/"+id)
}
