package cli

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/app/admin"
	"github.com/usipipo/usipipo/store/model"
)

func planVerb(c *command, verb string, args []string, call caller) error {
	switch verb {
	case "add":
		var p app.PlanSpec
		var dataGB, usd float64
		var speedMbit float64
		var protos string
		c.fs.StringVar(&p.Name, "name", "", "plan name shown to users")
		c.fs.IntVar(&p.DurationDays, "days", 30, "length of one period in days")
		c.fs.Float64Var(&dataGB, "data-gb", 0, "data cap per key and period in GiB (0 = none)")
		c.fs.Float64Var(&speedMbit, "speed-mbit", 0, "speed limit in Mbit/s (0 = none)")
		c.fs.IntVar(&p.MaxKeys, "max-keys", 1, "keys a user may hold")
		c.fs.IntVar(&p.MaxConns, "max-conns", 0, "concurrent connections per key (0 = none)")
		c.fs.StringVar(&protos, "protocols", "wireguard,outline", "comma-separated: wireguard, outline, mtproto")
		c.fs.Int64Var(&p.PriceStars, "price-stars", 0, "price in Telegram Stars")
		c.fs.Float64Var(&usd, "price-usd", 0, "price in USD")
		if err := c.none(args); err != nil {
			return err
		}
		var err error
		if p.Protocols, err = protocols(protos); err != nil {
			return err
		}
		p.DataCapBytes = uint64(dataGB * (1 << 30))
		p.SpeedBps = uint64(speedMbit * 1e6 / 8)
		p.PriceUSDCents = int64(math.Round(usd * 100))
		var out model.Plan
		if err := call("plan.add", p, &out); err != nil {
			return err
		}
		return c.print(out, func(w io.Writer) { printPlans(w, []model.Plan{out}) })
	case "list":
		var p admin.List
		c.fs.StringVar(&p.After, "after", "", "cursor from the previous page")
		if err := c.none(args); err != nil {
			return err
		}
		var out admin.Page[model.Plan]
		if err := call("plan.list", p, &out); err != nil {
			return err
		}
		return c.print(out, func(w io.Writer) { printPlans(w, out.Items); nextPage(w, out.Next) })
	case "grant":
		var p admin.PlanGrant
		c.fs.StringVar(&p.UserID, "user", "", "user id, Telegram id or referral code")
		c.fs.StringVar(&p.PlanID, "plan", "", "plan id")
		c.fs.IntVar(&p.Months, "months", 1, "periods to grant")
		c.fs.IntVar(&p.Days, "days", 0, "extra days to grant")
		if err := c.none(args); err != nil {
			return err
		}
		var out model.Subscription
		if err := call("plan.grant", p, &out); err != nil {
			return err
		}
		return c.print(out, func(w io.Writer) {
			fmt.Fprintf(w, "subscription %s: plan %s until %s\n", out.ID, out.PlanID, out.ExpiresAt.Format(time.DateTime))
		})
	case "revoke":
		var p admin.PlanRevoke
		c.fs.StringVar(&p.UserID, "user", "", "user id, Telegram id or referral code")
		c.fs.StringVar(&p.SubID, "sub", "", "subscription id (default: the user's current plan)")
		c.fs.StringVar(&p.Reason, "reason", "", "why (kept in the audit log)")
		if err := c.none(args); err != nil {
			return err
		}
		if p.UserID == "" {
			fmt.Fprintln(c.env.Stderr, "usipipo plan revoke: --user ID is required")
			return errUsage
		}
		var out model.Subscription
		if err := call("plan.revoke", p, &out); err != nil {
			return err
		}
		return c.print(out, func(w io.Writer) {
			fmt.Fprintf(w, "subscription %s: plan %s %s (its keys moved to another current plan, or suspended)\n",
				out.ID, out.PlanID, out.Status)
		})
	}
	return errUsage
}

func printPlans(w io.Writer, ps []model.Plan) {
	rows := make([][]string, len(ps))
	for i, p := range ps {
		var protos []string
		for _, t := range p.Protocols {
			protos = append(protos, string(t))
		}
		rows[i] = []string{p.ID, p.Name, fmt.Sprintf("%dd", p.DurationDays), bytesHuman(p.DataCapBytes), fmt.Sprint(p.MaxKeys),
			strings.Join(protos, ","), fmt.Sprintf("%d XTR / $%.2f", p.PriceStars, float64(p.PriceUSDCents)/100)}
	}
	table(w, []string{"ID", "NAME", "PERIOD", "DATA", "KEYS", "PROTOCOLS", "PRICE"}, rows)
}

// limitFlags adds the flags of an operator's grant.
func limitFlags(c *command) func() model.Limits {
	var days int
	var dataGB float64
	var conns int
	c.fs.IntVar(&days, "days", 0, "expires after this many days (0 = never)")
	c.fs.Float64Var(&dataGB, "data-gb", 0, "data cap in GiB (0 = none)")
	c.fs.IntVar(&conns, "max-conns", 0, "concurrent connections (0 = none)")
	return func() model.Limits {
		l := model.Limits{DataCap: uint64(dataGB * (1 << 30)), MaxConns: conns}
		if days > 0 {
			l.ExpiresAt = time.Now().Add(time.Duration(days) * 24 * time.Hour).UTC()
		}
		return l
	}
}

func keyVerb(c *command, verb string, args []string, call caller) error {
	switch verb {
	case "add":
		var p admin.KeyAdd
		var typ string
		c.fs.StringVar(&p.UserID, "user", "", "user id, Telegram id or referral code")
		c.fs.StringVar(&typ, "type", "wireguard", "wireguard or outline")
		c.fs.StringVar(&p.Name, "name", "", "key name")
		c.fs.BoolVar(&p.Trial, "trial", false, "the user's free trial (limits from the trial policy)")
		c.fs.BoolVar(&p.Plan, "plan", false, "within the user's plan and its quota")
		limits := limitFlags(c)
		if err := c.none(args); err != nil {
			return err
		}
		p.Type, p.Limits = model.KeyType(typ), limits()
		var out struct {
			Key    model.Key        `json:"key"`
			Config app.ClientConfig `json:"config"`
		}
		if err := call("key.add", p, &out); err != nil {
			return err
		}
		return c.print(out, func(w io.Writer) {
			fmt.Fprintf(c.env.Stderr, "key %s (%s) for user %s\n", out.Key.ID, out.Key.Type, out.Key.UserID)
			fmt.Fprint(w, configText(out.Config))
		})
	case "list":
		var p admin.List
		c.fs.StringVar(&p.UserID, "user", "", "only this user's keys (user id, Telegram id or referral code)")
		c.fs.StringVar(&p.Status, "status", "", "active, suspended, revoked or expired")
		c.fs.StringVar(&p.After, "after", "", "cursor from the previous page")
		c.fs.IntVar(&p.Limit, "limit", 50, "keys per page")
		if err := c.none(args); err != nil {
			return err
		}
		var out admin.Page[model.Key]
		if err := call("key.list", p, &out); err != nil {
			return err
		}
		return c.print(out, func(w io.Writer) { printKeys(w, out.Items); nextPage(w, out.Next) })
	case "revoke":
		var reason string
		c.fs.StringVar(&reason, "reason", "", "why (kept in the audit log)")
		id, err := c.one(args, "key id")
		if err != nil {
			return err
		}
		var out model.Key
		if err := call("key.revoke", admin.Target{ID: id, Reason: reason}, &out); err != nil {
			return err
		}
		return c.print(out, func(w io.Writer) { fmt.Fprintf(w, "key %s revoked\n", out.ID) })
	case "config":
		var qr string
		c.fs.StringVar(&qr, "qr", "", "also write the QR code PNG to this file")
		id, err := c.one(args, "key id")
		if err != nil {
			return err
		}
		var out app.ClientConfig
		if err := call("key.config", admin.Target{ID: id}, &out); err != nil {
			return err
		}
		if qr != "" {
			if err := writeQR(qr, out.Text); err != nil {
				return err
			}
		}
		return c.print(out, func(w io.Writer) { fmt.Fprint(w, configText(out)) })
	}
	return errUsage
}

// configText is a configuration as printed: the file or access key, then an
// Outline key's dynamic ssconf:// URL on its own line when there is one.
func configText(c app.ClientConfig) string {
	t := withNL(c.Text)
	if c.Dynamic != "" {
		t += c.Dynamic + "\n"
	}
	return t
}

func withNL(s string) string {
	if strings.HasSuffix(s, "\n") {
		return s
	}
	return s + "\n"
}

func proxyVerb(c *command, verb string, args []string, call caller) error {
	switch verb {
	case "add":
		var p admin.ProxyAdd
		c.fs.StringVar(&p.UserID, "user", "", "user id, Telegram id or referral code")
		c.fs.BoolVar(&p.Trial, "trial", false, "the user's MTProto trial")
		c.fs.BoolVar(&p.Plan, "plan", false, "within the user's plan")
		limits := limitFlags(c)
		if err := c.none(args); err != nil {
			return err
		}
		p.Limits = limits()
		var out struct {
			Key    model.Proxy      `json:"key"`
			Config app.ClientConfig `json:"config"`
		}
		if err := call("proxy.add", p, &out); err != nil {
			return err
		}
		return c.print(out, func(w io.Writer) { fmt.Fprintf(w, "%s\n%s\n", out.Config.Text, out.Config.Link) })
	case "list":
		var p admin.List
		c.fs.StringVar(&p.UserID, "user", "", "only this user's secrets (user id, Telegram id or referral code)")
		c.fs.StringVar(&p.After, "after", "", "cursor from the previous page")
		if err := c.none(args); err != nil {
			return err
		}
		var out admin.Page[model.Proxy]
		if err := call("proxy.list", p, &out); err != nil {
			return err
		}
		return c.print(out, func(w io.Writer) {
			rows := make([][]string, len(out.Items))
			for i, p := range out.Items {
				rows[i] = []string{p.ID, p.UserID, string(p.Status), bytesHuman(p.Usage.Total())}
			}
			table(w, []string{"PROXY", "USER", "STATUS", "USED"}, rows)
			nextPage(w, out.Next)
		})
	case "revoke":
		id, err := c.one(args, "proxy id")
		if err != nil {
			return err
		}
		if err := call("proxy.revoke", admin.Target{ID: id}, nil); err != nil {
			return err
		}
		return c.print(map[string]string{"id": id, "status": "revoked"}, func(w io.Writer) { fmt.Fprintf(w, "proxy %s revoked\n", id) })
	}
	return errUsage
}

func apikeyVerb(c *command, verb string, args []string, call caller) error {
	switch verb {
	case "add":
		var p admin.APIKeyAdd
		var scopes string
		var expires time.Duration
		c.fs.StringVar(&p.Name, "name", "", "what the key is for")
		c.fs.StringVar(&scopes, "scope", "read", "comma-separated: read, write, admin")
		c.fs.DurationVar(&expires, "expires", 0, "lifetime, e.g. 720h (0 = no expiry)")
		if err := c.none(args); err != nil {
			return err
		}
		for _, s := range strings.Split(scopes, ",") {
			p.Scopes = append(p.Scopes, model.Scope(strings.TrimSpace(s)))
		}
		if expires > 0 {
			p.Expires = time.Now().Add(expires).UTC()
		}
		var out app.NewAPIKey
		if err := call("apikey.add", p, &out); err != nil {
			return err
		}
		return c.print(out, func(w io.Writer) {
			fmt.Fprintf(c.env.Stderr, "API key %s created; the token is shown once:\n", out.Key.ID)
			fmt.Fprintln(w, out.Token)
		})
	case "list":
		var p admin.List
		if err := c.none(args); err != nil {
			return err
		}
		var out admin.Page[model.APIKey]
		if err := call("apikey.list", p, &out); err != nil {
			return err
		}
		return c.print(out, func(w io.Writer) {
			rows := make([][]string, len(out.Items))
			for i, k := range out.Items {
				var sc []string
				for _, s := range k.Scopes {
					sc = append(sc, string(s))
				}
				exp := "never"
				if !k.ExpiresAt.IsZero() {
					exp = k.ExpiresAt.Format(time.DateTime)
				}
				st := state(k.Revoked, "revoked")
				if st == "ok" && !k.ExpiresAt.IsZero() && !time.Now().Before(k.ExpiresAt) {
					st = "expired" // refused by the API from then on
				}
				rows[i] = []string{k.ID, k.Name, strings.Join(sc, ","), exp, st}
			}
			table(w, []string{"ID", "NAME", "SCOPES", "EXPIRES", "STATE"}, rows)
		})
	case "revoke":
		id, err := c.one(args, "API key id")
		if err != nil {
			return err
		}
		if err := call("apikey.revoke", admin.Target{ID: id}, nil); err != nil {
			return err
		}
		return c.print(map[string]string{"id": id, "status": "revoked"}, func(w io.Writer) { fmt.Fprintf(w, "API key %s revoked\n", id) })
	}
	return errUsage
}
