package cli

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/app/admin"
	"github.com/usipipo/usipipo/store/model"
)

// adminVerb runs user|plan|key|proxy|apikey|admin|status against the node.
func adminVerb(ctx context.Context, noun string, args []string, env Env) error {
	if noun == "status" {
		return status(ctx, args, env)
	}
	if len(args) == 0 {
		fmt.Fprintf(env.Stderr, "usipipo %s: which action? (see usipipo help)\n", noun)
		return errUsage
	}
	verb, rest := args[0], args[1:]
	c := newCommand(noun+" "+verb, env)
	// The socket path depends on --data, known only once flags are parsed.
	call := func(method string, params, out any) error {
		return admin.NewClient(c.socket()).Call(ctx, method, params, out)
	}
	switch noun + " " + verb {
	case "user add", "user list", "user show", "user ban", "user unban":
		return userVerb(c, verb, rest, call)
	case "user export", "user erase":
		return privacyVerb(c, verb, rest, call)
	case "plan add", "plan list", "plan grant", "plan revoke":
		return planVerb(c, verb, rest, call)
	case "key add", "key list", "key revoke", "key config":
		return keyVerb(c, verb, rest, call)
	case "proxy add", "proxy list", "proxy revoke":
		return proxyVerb(c, verb, rest, call)
	case "proxy free":
		return freeProxiesVerb(c, rest, call)
	case "apikey add", "apikey list", "apikey revoke":
		return apikeyVerb(c, verb, rest, call)
	case "pay qvapay":
		return payVerb(c, verb, rest, call)
	case "admin reset-totp":
		return resetTOTPVerb(c, rest, call)
	case "admin reset-password":
		var user string
		c.fs.StringVar(&user, "user", app.DefaultAdmin, "panel login name")
		if err := c.none(rest); err != nil {
			return err
		}
		var out map[string]string
		if err := call("admin.reset-password", admin.Target{ID: user}, &out); err != nil {
			return err
		}
		return c.print(out, func(w io.Writer) {
			fmt.Fprintf(w, "New one-time password for %s: %s\n(it must be changed at the next login)\n", out["username"], out["password"])
		})
	}
	fmt.Fprintf(env.Stderr, "usipipo: unknown action %q for %s\n", verb, noun)
	return errUsage
}

type caller func(method string, params, out any) error

func status(ctx context.Context, args []string, env Env) error {
	c := newCommand("status", env)
	if err := c.none(args); err != nil {
		return err
	}
	var out map[string]any
	if err := admin.NewClient(c.socket()).Call(ctx, "node.status", nil, &out); err != nil {
		return err
	}
	return c.print(out, func(w io.Writer) {
		fmt.Fprintf(w, "node %v (usipipo %v), up %v, http %v, data %v\ninstalled: %s\n",
			out["node"], out["version"], out["uptime"], out["http"], out["data_dir"], counts(out["installed"]))
	})
}

func userVerb(c *command, verb string, args []string, call caller) error {
	switch verb {
	case "add":
		var p admin.UserAdd
		c.fs.Int64Var(&p.TelegramID, "telegram-id", 0, "Telegram user id")
		c.fs.StringVar(&p.Username, "username", "", "Telegram username")
		c.fs.StringVar(&p.FirstName, "first-name", "", "first name")
		c.fs.StringVar(&p.Language, "language", "es", "es or en")
		c.fs.StringVar(&p.Referral, "referral", "", "referral code of the inviting user")
		if err := c.none(args); err != nil {
			return err
		}
		var u app.UserView
		if err := call("user.add", p, &u); err != nil {
			return err
		}
		return c.print(u, func(w io.Writer) { printUser(w, &u) })
	case "list":
		var p admin.List
		c.fs.StringVar(&p.After, "after", "", "cursor from the previous page")
		c.fs.IntVar(&p.Limit, "limit", 50, "users per page")
		if err := c.none(args); err != nil {
			return err
		}
		var out admin.Page[app.UserView]
		if err := call("user.list", p, &out); err != nil {
			return err
		}
		return c.print(out, func(w io.Writer) {
			rows := make([][]string, len(out.Items))
			for i, u := range out.Items {
				st := state(u.Banned, "banned")
				if u.Erased {
					st = "erased"
				}
				rows[i] = []string{u.ID, strconv.FormatInt(u.TelegramID, 10), u.Personal.Username, string(u.Role), st, u.Created.Format("2006-01-02")}
			}
			table(w, []string{"ID", "TELEGRAM", "USERNAME", "ROLE", "STATE", "CREATED"}, rows)
			nextPage(w, out.Next)
		})
	case "show":
		q, err := c.one(args, "user id, Telegram id or referral code")
		if err != nil {
			return err
		}
		var d admin.UserDetail
		if err := call("user.show", admin.Target{ID: q}, &d); err != nil {
			return err
		}
		return c.print(d, func(w io.Writer) {
			printUser(w, d.User)
			printKeys(w, d.Keys)
			for _, p := range d.Proxies {
				fmt.Fprintf(w, "mtproto %s  %s\n", p.ID, p.Status)
			}
		})
	case "ban", "unban":
		var reason string
		c.fs.StringVar(&reason, "reason", "", "why (kept in the audit log)")
		q, err := c.one(args, "user id")
		if err != nil {
			return err
		}
		var u app.UserView
		if err := call("user."+verb, admin.Target{ID: q, Reason: reason}, &u); err != nil {
			return err
		}
		return c.print(u, func(w io.Writer) { printUser(w, &u) })
	}
	return errUsage
}

// counts renders a JSON object of counts ({"outline": 2, …}) as
// "outline 2, wireguard 1", sorted by name; "none" when empty.
func counts(v any) string {
	m, _ := v.(map[string]any)
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	if len(names) == 0 {
		return "none"
	}
	sort.Strings(names)
	for i, k := range names {
		names[i] = fmt.Sprintf("%s %v", k, m[k])
	}
	return strings.Join(names, ", ")
}

func state(b bool, s string) string {
	if b {
		return s
	}
	return "ok"
}

func nextPage(w io.Writer, next string) {
	if next != "" {
		fmt.Fprintf(w, "more: --after %s\n", next)
	}
}

func printUser(w io.Writer, u *app.UserView) {
	fmt.Fprintf(w, "user %s\n  telegram: %d  username: %s  language: %s  role: %s\n  referral code: %s  credits: %d  banned: %v\n",
		u.ID, u.TelegramID, u.Personal.Username, u.Language, u.Role, u.ReferralCode, u.Balance, u.Banned)
}

func printKeys(w io.Writer, ks []model.Key) {
	rows := make([][]string, len(ks))
	for i, k := range ks {
		exp := "-"
		if !k.Limits.ExpiresAt.IsZero() {
			exp = k.Limits.ExpiresAt.Format(time.DateTime)
		}
		rows[i] = []string{k.ID, string(k.Type), k.Name, string(k.Status), exp, bytesHuman(k.Usage.Total()), k.AddrV4}
	}
	table(w, []string{"KEY", "TYPE", "NAME", "STATUS", "EXPIRES", "USED", "ADDRESS"}, rows)
}

func bytesHuman(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func protocols(s string) ([]model.KeyType, error) {
	var out []model.KeyType
	for _, p := range strings.Split(s, ",") {
		t := model.KeyType(strings.TrimSpace(p))
		if !t.Valid() {
			return nil, fmt.Errorf("protocol %q: want wireguard, outline or mtproto", p)
		}
		out = append(out, t)
	}
	return out, nil
}
