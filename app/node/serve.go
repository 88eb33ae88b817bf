package node

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"time"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/app/admin"
	"github.com/usipipo/usipipo/app/backup"
	"github.com/usipipo/usipipo/app/logging"
	"github.com/usipipo/usipipo/app/plane"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/web"
	"github.com/usipipo/usipipo/web/api"
	"github.com/usipipo/usipipo/web/loginguard"
)

// startPlanes starts the data planes. They stop after the reconcile loop,
// so its last usage reading still finds them.
func (n *Node) startPlanes(o Options, stops *[]func(context.Context)) ([]plane.Plane, error) {
	if o.Planes != nil {
		return o.Planes(n)
	}
	planes, err := dataPlanes(n, stops)
	if err != nil {
		return nil, fmt.Errorf("starting data planes: %w", err)
	}
	return planes, nil
}

// startServing starts the reconcile loop, HTTP, the admin socket and the
// backup scheduler, each registering how it stops.
func (n *Node) startServing(ctx context.Context, planes []plane.Plane, wg *sync.WaitGroup, stops *[]func(context.Context)) error {
	n.recon = app.NewReconciler(app.ReconcilerOptions{Service: n.Service, Planes: planes, Metrics: n.Metrics,
		Logger: logging.ForService(n.Log, "reconcile")})
	wg.Go(func() { n.recon.Run(ctx) })
	go func() {
		select {
		case <-n.recon.Ready():
			n.Log.Info("data_planes_installed", "duration_ms", float64(time.Since(n.started).Microseconds())/1000,
				"planes", len(planes))
			n.sd.Status(fmt.Sprintf("serving: API ready, %d data planes installed", len(planes)))
		case <-ctx.Done():
		}
	}()
	wg.Go(func() { n.maintain(ctx) })
	wg.Go(func() { n.housekeep(ctx, 24*time.Hour) })
	if err := n.startPayments(ctx, wg); err != nil {
		return err
	}
	if err := n.startShadowmere(ctx, wg); err != nil {
		return err
	}
	if err := n.startHTTP(stops); err != nil {
		return err
	}
	if err := n.startPublic(ctx, stops); err != nil {
		return err
	}
	if err := n.startOutlineAPI(stops); err != nil {
		return err
	}
	if err := n.startAdmin(ctx, stops); err != nil {
		return err
	}
	return n.startBackups(ctx, wg)
}

func (n *Node) startHTTP(stops *[]func(context.Context)) error {
	srv, err := web.New(web.Options{Logger: logging.ForService(n.Log, "api"), Metrics: n.Metrics, Version: n.version,
		Ready: map[string]func(context.Context) error{
			"store": func(context.Context) error { _, err := n.Store.GetMeta([]byte("schema_version")); return err },
			"data_planes": func(context.Context) error {
				select {
				case <-n.recon.Ready():
					return nil
				default:
					return fmt.Errorf("data planes not installed yet")
				}
			},
		}})
	if err != nil {
		return err
	}
	jwtKey, err := api.SigningKeyFrom(n.sec.dataKey[:])
	if err != nil {
		return err
	}
	n.apiShared, n.logins = api.NewShared(), loginguard.New(0, nil)
	if err := api.Mount(srv.App(), api.Options{Service: n.Service, SigningKey: jwtKey,
		Logger: logging.ForService(n.Log, "api"), Metrics: n.Metrics, Status: n.Status,
		Pay: n.Pay, Broadcaster: n.broadcaster(), Shared: n.apiShared, Logins: n.logins}); err != nil {
		return fmt.Errorf("mounting the REST API: %w", err)
	}
	n.HTTP = srv
	ln, err := n.Listen.Listen("tcp", n.Config.HTTP)
	if err != nil {
		return fmt.Errorf("listening on --http %s: %w", n.Config.HTTP, err)
	}
	n.HTTPAddr = ln.Addr()
	if ln, err = n.mountPanel(srv, ln); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil {
			n.Log.Error("http_stopped", "error", err.Error())
		}
	}()
	*stops = append(*stops, func(ctx context.Context) { srv.Shutdown(ctx); <-done })
	return nil
}

func (n *Node) startAdmin(ctx context.Context, stops *[]func(context.Context)) error {
	ln, err := n.Listen.ListenUnix(socketPath(n.Config.Data))
	if err != nil {
		return fmt.Errorf("admin socket: %w", err)
	}
	srv := admin.NewServer(n.Service, n, logging.ForService(n.Log, "admin"))
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ctx, ln)
	}()
	*stops = append(*stops, func(sctx context.Context) {
		ln.Close()
		srv.Shutdown(sctx)
		<-done
	})
	return nil
}

func (n *Node) startBackups(ctx context.Context, wg *sync.WaitGroup) error {
	if n.Config.BackupEvery <= 0 || !n.sec.hasPass {
		return nil
	}
	sch, err := backup.NewScheduler(backup.SchedulerOptions{Store: n.Store, DataKey: n.sec.dataKey, PassKey: n.sec.passKey,
		Dir: backupsPath(n.Config.Data), Every: n.Config.BackupEvery, Keep: n.Config.BackupKeep, Node: n.Config.Node,
		Version: n.version, Logger: logging.ForService(n.Log, "backup"), Metrics: n.Metrics, Rand: rand.Reader})
	if err != nil {
		return err
	}
	wg.Go(func() { sch.Run(ctx) })
	return nil
}

// maintain runs the node's periodic chores: re-reading its own addresses
// for the egress policy (a VPS may gain an address), folding hourly usage
// buckets older than two weeks into daily ones, and forgetting audit entries
// older than the retention (a bounded batch an hour is ~240,000 a day).
func (n *Node) maintain(ctx context.Context) {
	addrs := time.NewTicker(5 * time.Minute)
	defer addrs.Stop()
	compact := time.NewTicker(time.Hour)
	defer compact.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-addrs.C:
			if err := n.Egress.Refresh(); err != nil {
				n.Log.Warn("egress_refresh_failed", "error", err.Error())
			}
		case <-compact.C:
			if folded, err := n.Store.CompactUsage(time.Now()); err != nil {
				n.Log.Error("usage_compaction_failed", "error", err.Error())
			} else if folded > 0 {
				n.Log.Info("usage_compacted", "hourly_buckets", folded)
			}
			n.pruneAudit(ctx)
		}
	}
}

// pruneAudit forgets one batch of audit entries past the retention, and
// writes nothing (not even its own audit entry) when none are due.
func (n *Node) pruneAudit(ctx context.Context) {
	now := time.Now().UTC()
	cutoff := now.Add(-store.AuditRetention)
	oldest, found, err := n.Store.OldestAudit()
	if err != nil || !found || !oldest.Before(cutoff) {
		return
	}
	prune := store.PruneAudit{Before: cutoff, Max: 10_000}
	if err := n.Store.Do(ctx, store.Meta{At: now, Actor: string(app.ActorSystem)}, prune); err != nil {
		n.Log.Error("audit_prune_failed", "error", err.Error())
	}
}

// housekeep forgets old idempotency keys and trial-day counters
// (app.Service.Housekeep) at start and then every period: a node restarted
// more often than daily still gets it done.
func (n *Node) housekeep(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if pruned, err := n.Service.Housekeep(ctx); err != nil && ctx.Err() == nil {
			n.Log.Error("housekeeping_failed", "error", err.Error())
		} else if pruned > 0 {
			n.Log.Info("housekeeping", "entries", pruned)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
