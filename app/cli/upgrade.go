package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/usipipo/usipipo/app/admin"
	"github.com/usipipo/usipipo/app/node"
)

// upgradeCmd asks the running node to hand itself over to a new binary
// without dropping connections (see app/upgrade), and waits for the
// outcome: the successor answering on the admin socket, or the old process
// reporting why it serves on.
func upgradeCmd(ctx context.Context, args []string, env Env) error {
	c := newCommand("upgrade", env)
	var p admin.Upgrade
	c.fs.StringVar(&p.Binary, "binary", "", "the new executable (default: the running node's own path, where the installer puts a new version)")
	c.fs.DurationVar(&p.Timeout, "timeout", time.Minute, "how long the new process may take to start serving")
	c.fs.DurationVar(&p.Drain, "drain", 10*time.Minute, "how long the old process keeps relaying its open connections")
	if err := c.none(args); err != nil {
		return err
	}
	if p.Timeout <= 0 || p.Drain <= 0 {
		fmt.Fprintln(env.Stderr, "usipipo upgrade: --timeout and --drain must be positive")
		return errUsage
	}
	if p.Binary != "" {
		abs, err := filepath.Abs(p.Binary)
		if err != nil {
			return err
		}
		p.Binary = abs
	}
	cl := admin.NewClient(c.socket())
	var started admin.UpgradeStarted
	if err := cl.Call(ctx, "node.upgrade", p, &started); err != nil {
		return notStarted{fmt.Errorf("upgrade: %w", err)}
	}
	st, err := awaitUpgrade(ctx, cl, started, p.Timeout+30*time.Second)
	if err != nil {
		return fmt.Errorf("upgrade: %w", err)
	}
	return c.print(st, func(w io.Writer) {
		fmt.Fprintf(w, "upgraded: pid %d (usipipo %s) serves; pid %d drains its connections (at most %v)\n",
			st.PID, st.Version, started.OldPID, p.Drain)
	})
}

// awaitUpgrade polls node.status until the successor answers, or the old
// process says the upgrade failed. While neither accepts (the store
// changing hands), the kernel holds the call in the socket's backlog.
func awaitUpgrade(ctx context.Context, cl *admin.Client, started admin.UpgradeStarted, within time.Duration) (node.Status, error) {
	deadline := time.Now().Add(within)
	var lastErr error
	for time.Now().Before(deadline) {
		var st node.Status
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := cl.Call(cctx, "node.status", nil, &st)
		cancel()
		switch {
		case err != nil:
			lastErr = err
		case st.PID == started.NewPID:
			return st, nil
		case st.Upgrade != nil && st.Upgrade.NewPID == started.NewPID && st.Upgrade.State == "failed":
			return st, fmt.Errorf("%s; the running node (pid %d) keeps serving", st.Upgrade.Error, st.PID)
		}
		select {
		case <-ctx.Done():
			return node.Status{}, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	if lastErr != nil && !errors.Is(lastErr, context.DeadlineExceeded) {
		return node.Status{}, fmt.Errorf("no outcome within %v: %w", within, lastErr)
	}
	return node.Status{}, fmt.Errorf("no outcome within %v; see the node's log", within)
}

// notStarted is an upgrade the node refused (or could not be asked for)
// before it started a new process: nothing changed. It exits with status
// 3, so that the installer can restart the service instead.
type notStarted struct{ error }

func (e notStarted) Unwrap() error { return e.error }

// exitNotStarted is the exit status of a notStarted error.
const exitNotStarted = 3
