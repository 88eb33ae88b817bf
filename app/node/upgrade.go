package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/usipipo/usipipo/app/admin"
	"github.com/usipipo/usipipo/app/plane"
	"github.com/usipipo/usipipo/app/sdnotify"
	"github.com/usipipo/usipipo/app/upgrade"
	"github.com/usipipo/usipipo/store/model"
)

// The old process's side of a zero-downtime upgrade; the sequence is in
// the app/upgrade package documentation, the successor's side in
// successor.go.

// Defaults of node.upgrade.
const (
	defaultUpgradeTimeout = 60 * time.Second
	defaultDrain          = 10 * time.Minute
	// usageAckTimeout bounds the wait for the successor to commit the
	// drained connections' usage.
	usageAckTimeout = 15 * time.Second
)

// UpgradeState is the last upgrade's state, shown by node.status.
type UpgradeState struct {
	// State is "in progress" (the old process waits for its successor),
	// "failed" (the old process serves again), or, shown by the successor,
	// "taking over" (ready, waiting for the old process's answer) then
	// "took over".
	State  string `json:"state"`
	NewPID int    `json:"new_pid,omitempty"`
	OldPID int    `json:"old_pid,omitempty"`
	Error  string `json:"error,omitempty"`
}

// upgradeRequest is a node.upgrade call handed to the serving loop.
type upgradeRequest struct {
	admin.Upgrade
	started chan upgradeStarted
}

type upgradeStarted struct {
	res admin.UpgradeStarted
	err error
}

// parts is what runOnce serves with; an upgrade stops and restarts parts
// of it. Each stop list runs in reverse order.
type parts struct {
	planes     []plane.Plane // as the reconcile loop sees them (usagePlane)
	core       []func(context.Context)
	planeStops []func(context.Context)
	serving    []func(context.Context)
	// planeMetrics are the metric names the data planes registered: they
	// stay when the closed parts' metrics are dropped to be registered again.
	planeMetrics []string
	// tun is WireGuard in tun mode, stopped at the store's release (nil
	// otherwise).
	tun *tunHandoff
}

// notePlaneMetrics records the metric names registered since before.
func (r *parts) notePlaneMetrics(n *Node, before []string) {
	for _, name := range n.Metrics.ListMetricNames() {
		if !slices.Contains(before, name) {
			r.planeMetrics = append(r.planeMetrics, name)
		}
	}
}

// Upgrade implements admin.Upgrader: it starts the successor and returns;
// node.status then tells how it went.
func (n *Node) Upgrade(ctx context.Context, p admin.Upgrade) (admin.UpgradeStarted, error) {
	if p.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return admin.UpgradeStarted{}, fmt.Errorf("finding this node's binary: %w (pass --binary)", err)
		}
		p.Binary = exe
	}
	if err := upgrade.CheckBinary(p.Binary); err != nil {
		return admin.UpgradeStarted{}, err
	}
	if p.Timeout == 0 {
		p.Timeout = defaultUpgradeTimeout
	}
	if p.Drain == 0 {
		p.Drain = defaultDrain
	}
	if !n.upgrading.CompareAndSwap(false, true) {
		return admin.UpgradeStarted{}, fmt.Errorf("an upgrade is already in progress: %w", model.ErrState)
	}
	req := upgradeRequest{Upgrade: p, started: make(chan upgradeStarted, 1)}
	select {
	case n.upgrades <- req:
	case <-ctx.Done():
		n.upgrading.Store(false)
		return admin.UpgradeStarted{}, ctx.Err()
	}
	s := <-req.started
	return s.res, s.err
}

func (n *Node) setUpgrade(s UpgradeState) { n.upgradeState.Store(&s) }

// handOver runs one upgrade in the serving loop. It returns true when the
// successor took over and this process has drained (runOnce then stops
// the rest and returns), false when the upgrade failed and this process
// serves again; an error means it could not serve again.
func (n *Node) handOver(ctx context.Context, req upgradeRequest, r *parts) (bool, error) {
	defer n.upgrading.Store(false)
	files, env, err := n.Listen.Export()
	if err != nil {
		req.started <- upgradeStarted{err: err}
		return false, nil
	}
	child, err := upgrade.Start(req.Binary, os.Args[1:], append(sdnotify.ChildEnv(os.Environ()), env...), files, os.Stdout, os.Stderr)
	if err != nil {
		closeAll(files)
		req.started <- upgradeStarted{err: err}
		return false, nil
	}
	pid := child.PID()
	log := n.Log.With("action", "upgrade", "new_pid", pid)
	n.setUpgrade(UpgradeState{State: "in progress", NewPID: pid, OldPID: os.Getpid()})
	req.started <- upgradeStarted{res: admin.UpgradeStarted{OldPID: os.Getpid(), NewPID: pid, Binary: req.Binary}}
	log.Warn("upgrade_started", "details", req.Binary)
	n.sd.Status(fmt.Sprintf("upgrading: new process %d starting", pid))

	wait, cancel := context.WithTimeout(ctx, req.Timeout)
	defer cancel()
	released := false
	fail := func(reason string) (bool, error) {
		log.Error("upgrade_failed", "error", reason)
		child.Kill() // and wait: its lock on the database must be gone
		if err := n.Listen.Reclaim(files); err != nil {
			log.Error("upgrade_reclaim_failed", "error", err.Error())
		}
		n.setUpgrade(UpgradeState{State: "failed", NewPID: pid, OldPID: os.Getpid(), Error: reason})
		if released {
			if err := n.restartTun(ctx, log, r); err != nil {
				return false, fmt.Errorf("serving again after a failed upgrade: %w", err)
			}
			if err := n.reopen(ctx, r); err != nil {
				return false, fmt.Errorf("serving again after a failed upgrade: %w", err)
			}
			n.resumeTun(ctx, log, r)
			log.Warn("upgrade_rolled_back", "details", "serving again on the reopened store")
		}
		n.sd.Status("serving: upgrade failed: " + reason)
		return false, nil
	}
	if _, err := awaitChild(wait, ctx, child, upgrade.OpRelease, req.Timeout); err != nil {
		return fail(err.Error())
	}
	n.release(ctx, r)
	released = true
	n.stopTun(log, r)
	log.Info("upgrade_released", "details", "store closed; data planes keep serving")
	if err := child.Conn.Send(upgrade.Msg{Op: upgrade.OpReleased, PID: os.Getpid()}); err != nil {
		return fail(err.Error())
	}
	if _, err := awaitChild(wait, ctx, child, upgrade.OpReady, req.Timeout); err != nil {
		return fail(err.Error())
	}
	final, eps := n.yield(log, r, files)
	if err := n.sd.MainPID(pid); err != nil {
		log.Warn("sd_notify_failed", "error", err.Error())
	}
	n.up.stopWatchdog()
	if err := child.Conn.Send(upgrade.Msg{Op: upgrade.OpMain, PID: os.Getpid(), Endpoints: eps}); err != nil {
		log.Warn("upgrade_notify_failed", "error", err.Error())
	}
	log.Warn("upgrade_handed_over", "details", fmt.Sprintf("draining for at most %v", req.Drain))
	n.drain(ctx, log, r.planes, req.Drain)
	n.handUsage(ctx, log, child.Conn, r.planes, final)
	child.Conn.Close()
	return true, nil
}

// awaitChild waits for the successor's message want, within wait (the
// upgrade's timeout) and ctx (the node's life).
func awaitChild(wait, ctx context.Context, child *upgrade.Child, want string, timeout time.Duration) (upgrade.Msg, error) {
	select {
	case m, ok := <-child.Conn.Msgs():
		switch {
		case !ok:
			// The channel closes as the process exits: report the exit.
			select {
			case <-child.Exited():
				return m, errors.New(upgrade.ExitReason(child.Wait()))
			case <-time.After(2 * time.Second):
				return m, fmt.Errorf("the new process closed the upgrade channel: %w", child.Conn.Err())
			}
		case m.Op == upgrade.OpFailed:
			return m, fmt.Errorf("the new binary failed to start: %s", m.Error)
		case m.Op != want:
			return m, fmt.Errorf("the new binary sent %q, expected %q (an incompatible version?)", m.Op, want)
		}
		return m, nil
	case <-child.Exited():
		return upgrade.Msg{}, errors.New(upgrade.ExitReason(child.Wait()))
	case <-wait.Done():
		if ctx.Err() != nil {
			return upgrade.Msg{}, errors.New("the node is shutting down")
		}
		return upgrade.Msg{}, fmt.Errorf("the new binary was not ready within %v", timeout)
	}
}

// release stops every part that needs the store and closes it. The data
// planes keep serving on their own.
func (n *Node) release(ctx context.Context, r *parts) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	stopInReverse(sctx, r.serving)
	stopInReverse(sctx, r.core)
	r.serving, r.core = nil, nil
	n.releasedAt = time.Now().UTC()
}

// reopen opens the store again and restarts what needs it, the reconcile
// loop resuming on the parts data planes.
func (n *Node) reopen(ctx context.Context, r *parts) error {
	// The closed parts' metrics go, the data planes' stay (they serve on).
	for _, name := range n.Metrics.ListMetricNames() {
		if !slices.Contains(r.planeMetrics, name) {
			n.Metrics.UnregisterMetric(name)
		}
	}
	if err := n.openCore(&r.core); err != nil {
		return err
	}
	for i, p := range r.planes {
		if r.tun != nil && i == r.tun.idx {
			continue // started again: its counters are new
		}
		if up, ok := p.(*usagePlane); ok {
			r.planes[i] = up.resumed()
		}
	}
	return n.serve(ctx, r.planes, &r.serving)
}

// yield hands the sockets over for good: this process closes its copies
// (the kernel sockets live on in the successor) and stops WireGuard, whose
// UDP socket must have one reader. It returns WireGuard's final counters
// and where its peers were last heard from.
func (n *Node) yield(log *slog.Logger, r *parts, files []*os.File) (map[string]plane.Snapshot, map[string]netip.AddrPort) {
	final := map[string]plane.Snapshot{}
	var eps map[string]netip.AddrPort
	for i, p := range r.planes {
		if p.Name() != "wireguard" {
			continue
		}
		if r.tun != nil && i == r.tun.idx { // stopped at the release
			if r.tun.final.Epoch != "" {
				final[p.Name()] = r.tun.final
			}
			eps = r.tun.eps
			continue
		}
		inner := ownPlane(p)
		if snap, err := inner.Counters(context.Background()); err == nil {
			final[p.Name()] = snap
		}
		if e, ok := inner.(endpointer); ok {
			eps = e.Endpoints()
		}
		if c, ok := inner.(closer); ok {
			c.Close()
		}
	}
	for _, p := range r.planes {
		if a, ok := ownPlane(p).(acceptStopper); ok {
			a.StopAccepting()
		}
	}
	if err := n.Listen.Close(); err != nil {
		log.Error("upgrade_close_sockets", "error", err.Error())
	}
	closeAll(files)
	return final, eps
}

// acceptStopper is a plane that accepts on a socket of its own beside the
// listener the node closes (Outline's raw accepts on a duplicate).
type acceptStopper interface{ StopAccepting() }

// endpointer is WireGuard's hand-over of its peers' endpoints.
type endpointer interface {
	Endpoints() map[string]netip.AddrPort
}

// drain waits until the data planes' remaining connections end, or limit
// passes, or the node is told to stop.
func (n *Node) drain(ctx context.Context, log *slog.Logger, planes []plane.Plane, limit time.Duration) {
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		open, by := 0, ""
		for _, p := range planes {
			if p.Name() == "wireguard" {
				continue // stopped at the hand-over
			}
			// The plane itself: its usagePlane keeps the loop's last reading.
			if snap, err := ownPlane(p).Counters(ctx); err == nil {
				n := 0
				for _, c := range snap.Counters {
					n += c.Conns
				}
				if n > 0 {
					by += fmt.Sprintf(" %s:%d", p.Name(), n)
				}
				open += n
			}
		}
		switch {
		case open == 0:
			log.Info("upgrade_drained")
			return
		case time.Now().After(deadline):
			log.Warn("upgrade_drain_timeout", "details", fmt.Sprintf("cutting %d connections (%s)", open, strings.TrimSpace(by)))
			return
		}
		select {
		case <-ctx.Done():
			log.Warn("upgrade_drain_stopped", "details", fmt.Sprintf("told to stop with %d connections open (%s)", open, strings.TrimSpace(by)))
			return
		case <-tick.C:
		}
	}
}

// handUsage sends what the planes moved since the last committed batch to
// the successor, which commits it. If it cannot, the bytes are not billed:
// logged, never silently.
func (n *Node) handUsage(ctx context.Context, log *slog.Logger, c *upgrade.Conn, planes []plane.Plane, final map[string]plane.Snapshot) {
	deltas := unaccounted(context.WithoutCancel(ctx), planes, final)
	if len(deltas) == 0 {
		return
	}
	var total uint64
	for _, d := range deltas {
		total += d.Rx + d.Tx
	}
	err := c.Send(upgrade.Msg{Op: upgrade.OpUsage, Usage: &upgrade.Usage{Start: n.releasedAt, Deltas: deltas}})
	if err == nil {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), usageAckTimeout)
		var m upgrade.Msg
		m, err = c.Recv(wctx)
		cancel()
		if err == nil && m.Op != upgrade.OpUsageOK {
			err = fmt.Errorf("the new process answered %q: %s", m.Op, m.Error)
		}
	}
	if err != nil {
		log.Error("upgrade_usage_dropped", "error", err.Error(),
			"details", fmt.Sprintf("%d credentials, %d bytes relayed while draining are not counted", len(deltas), total))
		return
	}
	log.Info("upgrade_usage_handed", "details", fmt.Sprintf("%d credentials, %d bytes", len(deltas), total))
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// stopInReverse runs stops last first.
func stopInReverse(ctx context.Context, stops []func(context.Context)) {
	for i := len(stops) - 1; i >= 0; i-- {
		stops[i](ctx)
	}
}

// serve starts the parts that need the store: reconcile loop, HTTP, admin
// socket, payments, backups, chores; stops gets how they stop.
func (n *Node) serve(ctx context.Context, planes []plane.Plane, stops *[]func(context.Context)) error {
	runCtx, cancel := context.WithCancel(ctx)
	wg := new(sync.WaitGroup)
	*stops = append(*stops, func(context.Context) { cancel(); wg.Wait() })
	return n.startServing(runCtx, planes, wg, stops)
}
