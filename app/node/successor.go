package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/app/plane"
	"github.com/usipipo/usipipo/app/upgrade"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// The successor's side of a zero-downtime upgrade (see app/upgrade).

// mainTimeout bounds the wait for the old process to hand systemd over.
const mainTimeout = 30 * time.Second

// upgrades is a process's part in upgrades: as a successor, the control
// channel to the old process; as any node, how to stop its watchdog pings
// once it has handed the service to a successor.
type upgrades struct {
	ctrl         *upgrade.Conn // nil unless an upgrade started this process
	stopWatchdog func()
	oldPID       int
	ready        atomic.Bool
}

func newUpgrades(stopWatchdog func()) (*upgrades, error) {
	c, err := upgrade.FromEnv(os.Getenv, os.Unsetenv)
	if err != nil {
		return nil, err
	}
	return &upgrades{ctrl: c, stopWatchdog: stopWatchdog}, nil
}

// awaitRelease asks the old process to release the store, and waits until
// it has (its own timeout bounds how long this may take).
func (u *upgrades) awaitRelease(ctx context.Context, log *slog.Logger) error {
	if u.ctrl == nil {
		return nil
	}
	log.Info("upgrade_release", "details", "asking the running node to release the store")
	if err := u.ctrl.Send(upgrade.Msg{Op: upgrade.OpRelease, PID: os.Getpid()}); err != nil {
		return err
	}
	m, err := u.ctrl.Recv(ctx)
	if err != nil {
		return fmt.Errorf("waiting for the running node to release the store: %w", err)
	}
	if m.Op != upgrade.OpReleased {
		return fmt.Errorf("the running node did not release the store: %s %s", m.Op, m.Error)
	}
	u.oldPID = m.PID
	return nil
}

// startFailed tells the old process why this one could not start.
func (u *upgrades) startFailed(err error) {
	if u.ctrl == nil || err == nil || u.ready.Load() {
		return
	}
	_ = u.ctrl.Send(upgrade.Msg{Op: upgrade.OpFailed, PID: os.Getpid(), Error: err.Error()})
}

// takeOver, in a successor that serves, tells the old process so and waits
// until systemd follows this process (MAINPID) before READY=1 is sent;
// then it receives the old process's last usage in the background.
func (n *Node) takeOver(ctx context.Context, planes []plane.Plane) {
	u := n.up
	if u == nil || u.ctrl == nil || !u.ready.CompareAndSwap(false, true) {
		return
	}
	log := n.Log.With("action", "upgrade")
	// Said before OpReady: the old process reports the upgrade done as soon
	// as it answers, and a status read may reach this process before the
	// answer does.
	n.setUpgrade(UpgradeState{State: "taking over", NewPID: os.Getpid(), OldPID: u.oldPID})
	if err := u.ctrl.Send(upgrade.Msg{Op: upgrade.OpReady, PID: os.Getpid(), Version: n.version}); err != nil {
		log.Error("upgrade_ready_failed", "error", err.Error())
		return
	}
	wctx, cancel := context.WithTimeout(ctx, mainTimeout)
	m, err := u.ctrl.Recv(wctx)
	cancel()
	if err != nil || m.Op != upgrade.OpMain {
		log.Warn("upgrade_no_handover", "details", fmt.Sprintf("the old process did not confirm: %v %s", err, m.Op))
	}
	n.setUpgrade(UpgradeState{State: "took over", NewPID: os.Getpid(), OldPID: u.oldPID})
	if len(m.Endpoints) > 0 {
		go n.reachPeers(ctx, log, planes, m.Endpoints)
	}
	log.Warn("upgrade_took_over", "old_pid", u.oldPID, "details", "the old process drains its connections")
	go n.receiveUsage(ctx, log)
}

// reachPeers starts a WireGuard handshake with every peer the old process
// served, once the reconcile loop has installed them.
func (n *Node) reachPeers(ctx context.Context, log *slog.Logger, planes []plane.Plane, eps map[string]netip.AddrPort) {
	select {
	case <-n.recon.Ready():
	case <-ctx.Done():
		return
	case <-time.After(mainTimeout):
		log.Warn("upgrade_reach_skipped", "details", "data planes not installed in time")
		return
	}
	for _, p := range planes {
		if r, ok := ownPlane(p).(reacher); ok {
			log.Info("upgrade_reached_peers", "details", fmt.Sprintf("%d of %d WireGuard handshakes started", r.Reach(eps), len(eps)))
		}
	}
}

// reacher is WireGuard's start of handshakes with known endpoints.
type reacher interface {
	Reach(map[string]netip.AddrPort) int
}

// receiveUsage commits the usage the old process's drained connections
// accrued, then closes the channel.
func (n *Node) receiveUsage(ctx context.Context, log *slog.Logger) {
	c := n.up.ctrl
	defer c.Close()
	m, err := c.Recv(ctx)
	if err != nil || m.Op != upgrade.OpUsage || m.Usage == nil {
		return // the old process had nothing to hand over, or we are stopping
	}
	if err := n.commitHandedUsage(ctx, m.Usage); err != nil {
		log.Error("upgrade_usage_failed", "error", err.Error())
		_ = c.Send(upgrade.Msg{Op: upgrade.OpError, Error: err.Error()})
		return
	}
	_ = c.Send(upgrade.Msg{Op: upgrade.OpUsageOK})
	log.Info("upgrade_usage_committed", "details", fmt.Sprintf("%d credentials", len(m.Usage.Deltas)))
}

// commitHandedUsage commits handed-over usage as one UsageBatch ending now.
// The reconcile loop commits its own batches meanwhile; a batch is refused
// if one ending later is already recorded, so a refused one is retried
// with a later end.
func (n *Node) commitHandedUsage(ctx context.Context, u *upgrade.Usage) error {
	samples := make([]store.UsageSample, len(u.Deltas))
	for i, d := range u.Deltas {
		samples[i] = store.UsageSample{ID: d.ID, Rx: d.Rx, Tx: d.Tx}
	}
	var err error
	for range 5 {
		end := time.Now().UTC()
		start := u.Start
		if !end.After(start) {
			start = end.Add(-time.Second)
		}
		batch := store.UsageBatch{Node: n.Config.Node, Start: start, End: end, Deltas: u.Deltas}
		err = n.Store.Do(ctx, store.Meta{At: end, Actor: string(app.ActorSystem)}, batch)
		if errors.Is(err, model.ErrExists) {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if err == nil {
			if terr := n.Store.RecordUsage(end, samples); terr != nil {
				n.Log.Warn("usage_telemetry_failed", "error", terr.Error())
			}
		}
		return err
	}
	return err
}
