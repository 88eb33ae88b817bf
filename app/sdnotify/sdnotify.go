// Package sdnotify tells the service manager (systemd) how the node is
// doing, through the sd_notify(3) datagram protocol, without cgo.
//
// A unit with Type=notify starts the node with $NOTIFY_SOCKET naming a unix
// datagram socket (a path, or an abstract name written with a leading '@').
// The node sends newline-separated KEY=VALUE assignments to it:
//
//   - READY=1 when the API is serving ([Notifier.Ready]);
//   - STOPPING=1 when it begins to shut down ([Notifier.Stopping]);
//   - WATCHDOG=1 at least once per WatchdogSec= ([Notifier.Watchdog],
//     [Notifier.Run]); systemd passes the interval as $WATCHDOG_USEC and the
//     process it is meant for as $WATCHDOG_PID;
//   - MAINPID=N when a zero-downtime upgrade hands the service to a new
//     process ([Notifier.MainPID]), and STATUS=text for `systemctl status`.
//
// Outside systemd $NOTIFY_SOCKET is unset and every method does nothing, so
// callers need no "am I under systemd" branches. A nil *Notifier is valid
// and does nothing too.
//
// # Upgrades
//
// $WATCHDOG_PID names the process systemd started. A process that starts
// its successor passes its environment through [ChildEnv], which drops
// WATCHDOG_PID (sd_watchdog_enabled(3): without it the watchdog applies to
// whoever reads it), and, once the successor serves, sends MAINPID with the
// successor's pid before it exits, so that systemd follows the new process
// and accepts its watchdog pings under NotifyAccess=main.
package sdnotify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Environment variables of the protocol.
const (
	EnvSocket      = "NOTIFY_SOCKET"
	EnvWatchdogUS  = "WATCHDOG_USEC"
	EnvWatchdogPID = "WATCHDOG_PID"
)

// Errors of FromEnv and Notify.
var (
	// ErrSocket: $NOTIFY_SOCKET is not a unix socket path or abstract name
	// (systemd's vsock: addresses are not supported).
	ErrSocket = errors.New("sdnotify: unsupported NOTIFY_SOCKET")
	// ErrWatchdog: $WATCHDOG_USEC or $WATCHDOG_PID does not parse.
	ErrWatchdog = errors.New("sdnotify: invalid watchdog settings")
)

// writeTimeout bounds one send: the manager's socket is a local datagram
// socket, so a send that blocks this long means the manager is stuck.
const writeTimeout = time.Second

// minPing bounds how often Run pings, whatever WatchdogSec= says.
const minPing = time.Millisecond

// Notifier sends notifications to one socket. It is safe for concurrent
// use; it holds no open descriptor between sends.
type Notifier struct {
	addr     *net.UnixAddr // nil: not under a service manager
	watchdog time.Duration // 0: no watchdog for this process
}

// New returns a Notifier that sends to socket (a path, or "@name" for an
// abstract socket; "" does nothing) and expects a watchdog ping at least
// every watchdog (0: none).
func New(socket string, watchdog time.Duration) (*Notifier, error) {
	n := &Notifier{watchdog: max(watchdog, 0)}
	if socket == "" {
		return n, nil
	}
	if socket[0] != '/' && socket[0] != '@' {
		return nil, fmt.Errorf("%w: %q", ErrSocket, socket)
	}
	// The runtime maps a leading '@' to the abstract namespace (a NUL).
	n.addr = &net.UnixAddr{Name: socket, Net: "unixgram"}
	return n, nil
}

// FromEnv reads $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID of this
// process. The variables are left set: a successor started for an upgrade
// needs them (see [ChildEnv]).
func FromEnv() (*Notifier, error) {
	return fromEnv(os.Getenv, os.Getpid())
}

func fromEnv(getenv func(string) string, pid int) (*Notifier, error) {
	wd, err := watchdogFromEnv(getenv, pid)
	if err != nil {
		return nil, err
	}
	return New(getenv(EnvSocket), wd)
}

// watchdogFromEnv is sd_watchdog_enabled(3): the interval of $WATCHDOG_USEC
// if $WATCHDOG_PID is unset or names pid, else 0.
func watchdogFromEnv(getenv func(string) string, pid int) (time.Duration, error) {
	us := getenv(EnvWatchdogUS)
	if us == "" {
		return 0, nil
	}
	v, err := strconv.ParseUint(us, 10, 63)
	if err != nil || v == 0 || v > uint64(time.Duration(1<<62)/time.Microsecond) {
		return 0, fmt.Errorf("%w: %s=%q", ErrWatchdog, EnvWatchdogUS, us)
	}
	if p := getenv(EnvWatchdogPID); p != "" {
		want, err := strconv.Atoi(p)
		if err != nil || want <= 0 {
			return 0, fmt.Errorf("%w: %s=%q", ErrWatchdog, EnvWatchdogPID, p)
		}
		if want != pid {
			return 0, nil // meant for another process (our parent, say)
		}
	}
	return time.Duration(v) * time.Microsecond, nil
}

// Enabled reports whether a service manager listens.
func (n *Notifier) Enabled() bool { return n != nil && n.addr != nil }

// WatchdogInterval is how often the manager expects a ping, 0 if never.
func (n *Notifier) WatchdogInterval() time.Duration {
	if !n.Enabled() {
		return 0
	}
	return n.watchdog
}

// Notify sends the assignments (each "KEY=VALUE") as one datagram. It does
// nothing when no manager listens.
func (n *Notifier) Notify(assignments ...string) error {
	if !n.Enabled() || len(assignments) == 0 {
		return nil
	}
	for _, a := range assignments {
		if !strings.Contains(a, "=") || strings.Contains(a, "\n") {
			return fmt.Errorf("sdnotify: malformed assignment %q", a)
		}
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	defer c.Close()
	if err := c.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	if _, err := c.Write([]byte(strings.Join(assignments, "\n") + "\n")); err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	return nil
}

// Ready tells the manager that start-up finished (READY=1), with an
// optional status line.
func (n *Notifier) Ready(status string) error {
	return n.Notify(withStatus([]string{"READY=1"}, status)...)
}

// Stopping tells the manager that shutdown began (STOPPING=1).
func (n *Notifier) Stopping(status string) error {
	return n.Notify(withStatus([]string{"STOPPING=1"}, status)...)
}

// Status sets the line `systemctl status` shows.
func (n *Notifier) Status(status string) error {
	return n.Notify("STATUS=" + oneLine(status))
}

// Watchdog pings the watchdog (WATCHDOG=1).
func (n *Notifier) Watchdog() error { return n.Notify("WATCHDOG=1") }

// MainPID tells the manager that pid is now the service's main process.
// Under NotifyAccess=main only the current main process may send it.
func (n *Notifier) MainPID(pid int) error {
	if pid <= 0 {
		return fmt.Errorf("sdnotify: invalid pid %d", pid)
	}
	return n.Notify("MAINPID=" + strconv.Itoa(pid))
}

// Run pings the watchdog every half interval until ctx ends. It returns at
// once when the manager expects no pings. Errors are not fatal (the manager
// may be restarting); a missed ping only matters if every ping misses.
func (n *Notifier) Run(ctx context.Context) { n.RunChecked(ctx, nil) }

// RunChecked is Run, but pings only while check (if not nil) returns nil,
// so a node that is alive but no longer healthy is restarted by the
// manager. check gets a context that ends by the next ping.
func (n *Notifier) RunChecked(ctx context.Context, check func(context.Context) error) {
	every := n.WatchdogInterval() / 2
	if every <= 0 {
		return
	}
	every = max(every, minPing) // an absurdly short WatchdogSec= must not spin
	t := time.NewTicker(every)
	defer t.Stop()
	var lastErr string
	for {
		if n.healthy(ctx, every, check, &lastErr) {
			_ = n.Watchdog()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// healthy runs check (bounded by timeout) and keeps STATUS= telling why the
// watchdog is about to fire; lastErr is the reason last reported.
func (n *Notifier) healthy(ctx context.Context, timeout time.Duration, check func(context.Context) error, lastErr *string) bool {
	if check == nil {
		return true
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	err := check(cctx)
	cancel()
	if ctx.Err() != nil {
		return false
	}
	if err != nil {
		if msg := err.Error(); msg != *lastErr {
			*lastErr = msg
			_ = n.Status("unhealthy: " + msg)
		}
		return false
	}
	if *lastErr != "" {
		*lastErr = ""
		_ = n.Status("healthy")
	}
	return true
}

// ChildEnv returns env (as os.Environ gives it) for a successor process
// started to take over the service: WATCHDOG_PID is dropped, because it
// names this process, so that the successor keeps the watchdog.
func ChildEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if strings.HasPrefix(kv, EnvWatchdogPID+"=") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

func withStatus(a []string, status string) []string {
	if status != "" {
		a = append(a, "STATUS="+oneLine(status))
	}
	return a
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }
