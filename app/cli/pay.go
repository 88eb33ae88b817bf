package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/usipipo/usipipo/app/admin"
)

// maxSecretFile bounds what is read as a secret: a file that large is not one.
const maxSecretFile = 4 << 10

// payVerb: pay qvapay --app-id ID (--secret-file FILE | --secret-file - |
// USIPIPO_QVAPAY_SECRET). The secret never goes on the command line, where
// ps and the shell history would keep it.
func payVerb(c *command, verb string, args []string, call caller) error {
	if verb != "qvapay" {
		return errUsage
	}
	var appID, secretFile string
	c.fs.StringVar(&appID, "app-id", "", "QvaPay merchant app id")
	c.fs.StringVar(&secretFile, "secret-file", "", `file holding the app secret ("-": read it from stdin; default: env USIPIPO_QVAPAY_SECRET)`)
	if err := c.none(args); err != nil {
		return err
	}
	if appID == "" {
		fmt.Fprintln(c.env.Stderr, "usipipo pay qvapay: --app-id is required")
		return errUsage
	}
	secret, err := readSecret(secretFile, c.env)
	if err != nil {
		return err
	}
	var out admin.QvaPaySet
	if err := call("pay.qvapay", admin.QvaPayCredentials{AppID: appID, Secret: secret}, &out); err != nil {
		return err
	}
	return c.print(out, func(w io.Writer) {
		fmt.Fprintf(w, "QvaPay credentials set for app %s (the secret is stored sealed)\n", out.AppID)
	})
}

// readSecret reads a one-line secret from a file, stdin ("-") or the
// environment, without the line ending.
func readSecret(file string, env Env) (string, error) {
	var r io.Reader
	switch file {
	case "":
		if v, ok := env.LookupEnv("USIPIPO_QVAPAY_SECRET"); ok && v != "" {
			return strings.TrimSpace(v), nil
		}
		return "", errors.New("no QvaPay secret: pass --secret-file FILE (or - for stdin) or set USIPIPO_QVAPAY_SECRET")
	case "-":
		if env.Stdin == nil {
			return "", errors.New("no stdin to read the secret from")
		}
		r = env.Stdin
	default:
		f, err := os.Open(file)
		if err != nil {
			return "", fmt.Errorf("reading --secret-file: %w", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxSecretFile+1))
	if err != nil {
		return "", fmt.Errorf("reading the secret: %w", err)
	}
	if len(b) > maxSecretFile {
		return "", errors.New("the secret file is too large to be a secret")
	}
	line, rest, _ := strings.Cut(string(b), "\n")
	if strings.TrimSpace(rest) != "" {
		return "", errors.New("the secret must be one line")
	}
	secret := strings.TrimSpace(line)
	if secret == "" {
		return "", errors.New("the secret is empty")
	}
	return secret, nil
}
