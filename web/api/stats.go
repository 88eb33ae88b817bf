package api

import (
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/usipipo/usipipo/app"
)

type dayStat struct {
	Day             string `json:"day"`
	RevenueStars    int64  `json:"revenue_stars"`
	RevenueUSDCents int64  `json:"revenue_usd_cents"`
	BytesIn         uint64 `json:"bytes_in"`
	BytesOut        uint64 `json:"bytes_out"`
	NewUsers        int    `json:"new_users"`
}

type statsResponse struct {
	Users         int            `json:"users"`
	ActiveUsers   int            `json:"active_users"`
	ActiveKeys    map[string]int `json:"active_keys"`
	ActiveProxies int            `json:"active_proxies"`
	Days          []dayStat      `json:"days"`
}

// DefaultStatsDays is the series length when ?days is not given.
const DefaultStatsDays = 30

func (a *api) stats(c *fiber.Ctx) error {
	days := DefaultStatsDays
	if d := c.Query("days"); d != "" {
		n, err := strconv.Atoi(d)
		if err != nil || n < 1 || n > app.MaxStatsDays {
			return badRequest("days must be an integer from 1 to " + strconv.Itoa(app.MaxStatsDays) + ".")
		}
		days = n
	}
	st, err := a.svc.Stats(c.UserContext(), days)
	if err != nil {
		return err
	}
	out := statsResponse{Users: st.Users, ActiveUsers: st.ActiveUsers, ActiveKeys: map[string]int{},
		ActiveProxies: st.ActiveProxies, Days: make([]dayStat, 0, len(st.Days))}
	for t, n := range st.ActiveKeys {
		out.ActiveKeys[string(t)] = n
	}
	for _, d := range st.Days {
		out.Days = append(out.Days, dayStat(d))
	}
	return sendRead(c, out)
}
