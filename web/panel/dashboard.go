package panel

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/store/model"
)

// dashboardDays is the length of the dashboard's series.
const dashboardDays = 30

type dashboardData struct {
	Stats     *app.Stats
	Protocols []protocolCount
	Stars     int64
	USDCents  int64
	Traffic   uint64
	NewUsers  int
	Days      int
}

type protocolCount struct {
	Type  string
	Count int
}

func (p *panel) dashboard(c *fiber.Ctx) error {
	st, err := p.svc.Stats(c.UserContext(), dashboardDays)
	if err != nil {
		return p.fail(c, err)
	}
	d := dashboardData{Stats: st, Days: dashboardDays}
	for t, n := range st.ActiveKeys {
		d.Protocols = append(d.Protocols, protocolCount{string(t), n})
	}
	d.Protocols = append(d.Protocols, protocolCount{"mtproto", st.ActiveProxies})
	sort.Slice(d.Protocols, func(i, j int) bool { return d.Protocols[i].Type < d.Protocols[j].Type })
	for _, day := range st.Days {
		d.Stars += day.RevenueStars
		d.USDCents += day.RevenueUSDCents
		d.Traffic += day.BytesIn + day.BytesOut
		d.NewUsers += day.NewUsers
	}
	return p.page(c, "dashboard", "Dashboard", d)
}

// chartSeries is what assets/panel.js draws: uPlot's columnar data, the
// x axis in Unix seconds (midnight UTC of each day).
type chartSeries struct {
	Days     []int64        `json:"days"`
	Stars    []int64        `json:"stars"`
	USD      []float64      `json:"usd"`
	BytesIn  []uint64       `json:"bytes_in"`
	BytesOut []uint64       `json:"bytes_out"`
	NewUsers []int          `json:"new_users"`
	Keys     map[string]int `json:"active_keys"`
	Totals   map[string]int `json:"totals"`
}

func (p *panel) dashboardData(c *fiber.Ctx) error {
	st, err := p.svc.Stats(c.UserContext(), dashboardDays)
	if err != nil {
		return p.fail(c, err)
	}
	out := chartSeries{Keys: map[string]int{"mtproto": st.ActiveProxies},
		Totals: map[string]int{"users": st.Users, "active_users": st.ActiveUsers}}
	for t, n := range st.ActiveKeys {
		out.Keys[string(t)] = n
	}
	for _, d := range st.Days {
		day, err := time.Parse(time.DateOnly, d.Day)
		if err != nil {
			return p.fail(c, fmt.Errorf("stats day %q: %w", d.Day, model.ErrInvalid))
		}
		out.Days = append(out.Days, day.Unix())
		out.Stars = append(out.Stars, d.RevenueStars)
		out.USD = append(out.USD, float64(d.RevenueUSDCents)/100)
		out.BytesIn = append(out.BytesIn, d.BytesIn)
		out.BytesOut = append(out.BytesOut, d.BytesOut)
		out.NewUsers = append(out.NewUsers, d.NewUsers)
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(out)
}

type statusRow struct{ Key, Value string }

// statusFragment renders the node's live status as rows; the dashboard
// polls it with htmx.
func (p *panel) statusFragment(c *fiber.Ctx) error {
	var rows []statusRow
	if p.o.Status == nil {
		rows = []statusRow{{"node", p.svc.Node()}, {"time", p.now().UTC().Format(time.RFC3339)}}
	} else {
		st, err := p.o.Status(c.UserContext())
		if err != nil {
			return p.fail(c, err)
		}
		if rows, err = flatten(st); err != nil {
			return p.fail(c, err)
		}
	}
	return p.partial(c, "dashboard", "status", rows)
}

// flatten turns a status value into sorted key/value rows through its JSON
// form, one level of nesting spelled "a.b".
func flatten(v any) ([]statusRow, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding the node status: %w", err)
	}
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("node status is not an object: %w", err)
	}
	var rows []statusRow
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			for sk, sv := range sub {
				rows = append(rows, statusRow{k + "." + sk, fmt.Sprint(sv)})
			}
			continue
		}
		rows = append(rows, statusRow{k, fmt.Sprint(v)})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Key < rows[j].Key })
	return rows, nil
}
