// Package cli is the usipipo command line: init, serve, version, backup,
// restore, doctor, and the admin verbs (user, plan, key, proxy, apikey,
// admin) that talk to a running node over DATA/admin.sock. main.go calls
// Run; tests call it in-process with their own streams and environment.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Env is the world a command runs in.
type Env struct {
	Stdin     io.Reader
	Stdout    io.Writer
	Stderr    io.Writer
	LookupEnv func(string) (string, bool)
	Version   string
	// Terminal reports whether Stderr is a terminal (init prints secrets
	// there only then).
	Terminal bool
}

// OS is the environment of the real process.
func OS(version string) Env {
	fi, err := os.Stderr.Stat()
	tty := err == nil && fi.Mode()&os.ModeCharDevice != 0
	return Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, LookupEnv: os.LookupEnv, Version: version, Terminal: tty}
}

const usage = `usage: usipipo <command> [flags]

Node:
  init                     prepare a data dir; prints the one-time admin password
  serve                    run the node (initialises an empty data dir first)
  version                  print the version
  backup  --out FILE       hot, encrypted backup (USIPIPO_BACKUP_PASSPHRASE or --passphrase-file)
  restore --in FILE        restore a backup (into a stopped data dir, or a running node)
  doctor                   check ports, permissions, clock, disk and the database
  upgrade [--binary PATH]  hand the running node over to a new binary without dropping connections

Admin (over DATA/admin.sock of the running node; --data DIR or USIPIPO_DATA; --json):
  user   add --telegram-id N | list | show ID | ban ID [--reason R] | unban ID
  user   export ID [--out FILE]   everything stored about a user, as JSON (GDPR)
  user   erase ID --yes           revoke their keys, destroy personal data; payments kept anonymised
  plan   add --name N --days D [...] | list | grant --user ID --plan ID [--months N] | revoke --user ID [--sub ID] [--reason R]
  key    add --user ID --type wireguard|outline | list [--user ID] | revoke ID | config ID [--qr FILE]
  proxy  add --user ID | list [--user ID] | revoke ID | free [--country CC] [--limit N]
  apikey add --scope read|write|admin [--name N] [--expires 720h] | list | revoke ID
  admin  reset-password [--user NAME]
  admin  reset-totp [--user NAME]   turn a login's TOTP second factor off (lost authenticator)
  pay    qvapay --app-id ID --secret-file FILE|-   (or env USIPIPO_QVAPAY_SECRET; never on the command line)
  status                   the running node's status

Run "usipipo <command> -h" for a command's flags.
`

// Run runs one command and returns the process exit code.
func Run(ctx context.Context, args []string, env Env) int {
	if env.LookupEnv == nil {
		env.LookupEnv = func(string) (string, bool) { return "", false }
	}
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "serve":
		err = serve(ctx, rest, env)
	case "init":
		err = initCmd(ctx, rest, env)
	case "version", "--version", "-v":
		fmt.Fprintf(env.Stdout, "usipipo %s\n", env.Version)
	case "backup":
		err = backupCmd(ctx, rest, env)
	case "restore":
		err = restoreCmd(ctx, rest, env)
	case "upgrade":
		err = upgradeCmd(ctx, rest, env)
	case "doctor":
		err = doctor(ctx, rest, env)
	case "user", "plan", "key", "proxy", "apikey", "admin", "status", "pay":
		err = adminVerb(ctx, cmd, rest, env)
	case "help", "-h", "--help":
		fmt.Fprint(env.Stdout, usage)
	default:
		fmt.Fprintf(env.Stderr, "usipipo: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	return exitCode(err, env)
}

// errUsage marks a mistake in the command line; its usage text was printed.
var errUsage = errors.New("usage")

func exitCode(err error, env Env) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	msg := err.Error()
	fmt.Fprintf(env.Stderr, "usipipo: %s\n", strings.TrimSpace(msg))
	if errors.As(err, new(notStarted)) {
		return exitNotStarted
	}
	return 1
}
