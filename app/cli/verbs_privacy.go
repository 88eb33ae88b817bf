package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/app/admin"
)

// privacyVerb runs user export|erase (GDPR, issue #8 item 6) over the admin
// socket: the same Service.Export document the API and the panel give, and
// the same Service.Erase.
func privacyVerb(c *command, verb string, args []string, call caller) error {
	switch verb {
	case "export":
		return exportVerb(c, args, call)
	case "erase":
		return eraseVerb(c, args, call)
	}
	return errUsage
}

// exportSummary is the part of the export document the human text shows.
type exportSummary struct {
	User          app.UserView      `json:"user"`
	Keys          []json.RawMessage `json:"keys"`
	Proxies       []json.RawMessage `json:"proxies"`
	Tickets       []json.RawMessage `json:"tickets"`
	Payments      []json.RawMessage `json:"payments"`
	Credits       []json.RawMessage `json:"credits"`
	Subscriptions []json.RawMessage `json:"subscriptions"`
}

func exportVerb(c *command, args []string, call caller) error {
	var out string
	c.fs.StringVar(&out, "out", "", "write the JSON document to FILE (mode 0600) instead of printing a summary")
	q, err := c.one(args, "user id, Telegram id or referral code")
	if err != nil {
		return err
	}
	var doc json.RawMessage
	if err := call("user.export", admin.Target{ID: q}, &doc); err != nil {
		return err
	}
	var sum exportSummary
	if err := json.Unmarshal(doc, &sum); err != nil {
		return fmt.Errorf("reading the export of %s: %w", q, err)
	}
	summary := func(w io.Writer) {
		fmt.Fprintf(w, "export of user %s (erased: %v): %d keys, %d MTProto proxies, %d subscriptions, %d payments, %d credit entries, %d tickets\n",
			sum.User.ID, sum.User.Erased, len(sum.Keys), len(sum.Proxies), len(sum.Subscriptions), len(sum.Payments), len(sum.Credits), len(sum.Tickets))
	}
	if out == "" {
		return c.print(doc, func(w io.Writer) {
			summary(w)
			fmt.Fprintln(w, "(--json prints the whole document, --out FILE writes it to a file)")
		})
	}
	if err := writePrivate(out, append(doc, '\n')); err != nil {
		return err
	}
	return c.print(map[string]string{"user_id": sum.User.ID, "file": out}, func(w io.Writer) {
		summary(w)
		fmt.Fprintf(w, "written to %s\n", out)
	})
}

// writePrivate writes personal data or a secret (an export, a key's QR code)
// to path with mode 0600, whole or not at all: a temp file in the same
// directory renamed over path, so an existing file with looser permissions is
// replaced rather than rewritten in place.
func writePrivate(path string, b []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	// CreateTemp already makes the file 0600; say so, in case that changes.
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := f.Write(b); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

func eraseVerb(c *command, args []string, call caller) error {
	var yes bool
	c.fs.BoolVar(&yes, "yes", false, "confirm: the erasure cannot be undone")
	q, err := c.one(args, "user id, Telegram id or referral code")
	if err != nil {
		return err
	}
	if !yes {
		fmt.Fprintf(c.env.Stderr, "usipipo user erase: erasing %s cannot be undone (keys revoked, personal data destroyed); add --yes to confirm\n", q)
		return errUsage
	}
	var u app.UserView
	if err := call("user.erase", admin.Target{ID: q}, &u); err != nil {
		return err
	}
	return c.print(u, func(w io.Writer) {
		fmt.Fprintf(w, "user %s erased: personal data destroyed, keys and proxies revoked; payments and credits kept under the bare id\n", u.ID)
	})
}
