package cli

import (
	"fmt"
	"io"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/app/admin"
)

// resetTOTPVerb: admin reset-totp [--user NAME] turns a panel/API login's
// TOTP second factor (and its recovery codes) off on the running node, for
// an admin locked out by a lost authenticator. The node records it in the
// audit trail; the login can enrol again from the panel.
func resetTOTPVerb(c *command, args []string, call caller) error {
	var user string
	c.fs.StringVar(&user, "user", app.DefaultAdmin, "panel login name")
	if err := c.none(args); err != nil {
		return err
	}
	var out admin.TOTPReset
	if err := call("admin.reset-totp", admin.Target{ID: user}, &out); err != nil {
		return err
	}
	return c.print(out, func(w io.Writer) {
		if !out.WasEnrolled {
			fmt.Fprintf(w, "%s has no TOTP second factor; nothing changed\n", out.Username)
			return
		}
		fmt.Fprintf(w, "TOTP second factor and recovery codes of %s removed: the password alone logs in until it enrols again\n", out.Username)
	})
}
