package cli

import (
	"fmt"
	"io"
	"strconv"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/app/admin"
)

// freeProxiesVerb is `usipipo proxy free [--country CC] [--limit N]`: the
// node's working free Shadowsocks proxies (from --shadowmere-url), fastest
// first, each with its ss:// URL.
func freeProxiesVerb(c *command, args []string, call caller) error {
	var p admin.FreeProxies
	c.fs.StringVar(&p.Country, "country", "", "only proxies in this country (ISO code, e.g. DE)")
	c.fs.IntVar(&p.Limit, "limit", app.DefaultFreeProxies, "how many, at most "+strconv.Itoa(app.MaxFreeProxies))
	if err := c.none(args); err != nil {
		return err
	}
	var out []app.FreeProxy
	if err := call("proxy.free", p, &out); err != nil {
		return err
	}
	return c.print(out, func(w io.Writer) {
		if len(out) == 0 {
			fmt.Fprintln(w, "no working free proxy known yet")
			return
		}
		rows := make([][]string, len(out))
		for i, f := range out {
			rows[i] = []string{f.Country, strconv.FormatFloat(f.LatencyMS, 'f', 0, 64) + " ms", f.Check, f.Config.Text}
		}
		table(w, []string{"COUNTRY", "LATENCY", "CHECK", "URL"}, rows)
	})
}
