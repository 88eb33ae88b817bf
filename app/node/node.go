// Package node wires a usipipo node together — store, keys, service layer,
// reconcile loop, data planes, HTTP, admin socket, scheduled backups — and
// runs it: every part has the same lifecycle, a failed start stops what
// already started, and shutdown finishes in-flight work before the store
// closes.
package node

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/app/backup"
	"github.com/usipipo/usipipo/app/config"
	"github.com/usipipo/usipipo/app/egress"
	"github.com/usipipo/usipipo/app/listen"
	"github.com/usipipo/usipipo/app/logging"
	"github.com/usipipo/usipipo/app/notify"
	"github.com/usipipo/usipipo/app/pay"
	"github.com/usipipo/usipipo/app/plane"
	"github.com/usipipo/usipipo/app/sdnotify"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/cache"
	"github.com/usipipo/usipipo/store/keyring"
	"github.com/usipipo/usipipo/web"
	"github.com/usipipo/usipipo/web/api"
	"github.com/usipipo/usipipo/web/loginguard"
)

// Options configure Run beyond the settings.
type Options struct {
	Version  string
	Logs     io.Writer // JSON log lines; default os.Stdout
	Terminal io.Writer // where init prints one-time secrets; nil: a 0600 file in the data dir
	// Planes, if set, replaces the node's data planes (WireGuard, Outline,
	// MTProto on their configured sockets); tests use it to measure the
	// node's own work.
	Planes func(n *Node) ([]plane.Plane, error)
	// Started, if set, is called each time the node starts serving: once,
	// and again after a restore swapped its database (tests use it).
	Started func(n *Node)
}

// Node is a running node's parts.
type Node struct {
	Config  *config.Config
	Log     *slog.Logger
	Metrics *metrics.Set
	Store   *store.Store
	Service *app.Service
	Egress  *egress.Dialer
	HTTP    *web.Server
	Pay     *pay.Service
	Notify  *notify.Notifier // nil without --bot-token or --smtp-host
	// alertSink is Notify once it runs, for the log's admin alerts.
	alertSink atomic.Pointer[notify.Notifier]
	Listen    *listen.Registry
	// HTTPAddr is the bound address of --http (useful with port 0).
	HTTPAddr net.Addr

	pub publicSide // --public-listen and --outline-api (public.go)
	// bound are the data planes' sockets, for Status (control.go).
	bound boundSockets
	// apiShared is the REST API's login and idempotency state, one per
	// start, shared by the --http and the public listener (serve.go).
	apiShared *api.Shared
	// logins is the failed-login back-off the API and the panel share, so a
	// guesser cannot double its free tries by alternating between them.
	logins *loginguard.Guard

	version   string
	started   time.Time
	sec       *secrets
	cache     *cache.Cache
	recon     *app.Reconciler
	restart   chan string // a verified restored database to swap in
	sd        *sdnotify.Notifier
	restoreMu sync.Mutex
	// stagedManifest describes the staged restore; set before restart is sent.
	stagedManifest *backup.Manifest
	// restored is the outcome of the restore that caused this start.
	restored string

	// Zero-downtime upgrades (upgrade.go, successor.go).
	up           *upgrades
	upgrades     chan upgradeRequest
	upgrading    atomic.Bool
	upgradeState atomic.Pointer[UpgradeState]
	releasedAt   time.Time
}

// errRestart asks Run to stop every part, swap in a restored database, and
// start again.
var errRestart = errors.New("restart requested")

// Run serves the node until ctx ends. On an empty data dir it first
// initialises it, as `usipipo init` would.
func Run(ctx context.Context, cfg *config.Config, o Options) error {
	if o.Logs == nil {
		o.Logs = os.Stdout
	}
	log := logging.New(o.Logs, "node", cfg.LogLevel)
	// Under systemd (Type=notify): READY, STOPPING, STATUS and the watchdog.
	// Outside it, or with a malformed NOTIFY_SOCKET, sd is nil: a no-op.
	sd, err := sdnotify.FromEnv()
	if err != nil {
		log.Warn("sd_notify_off", "error", err.Error())
	}
	// The watchdog pings for the whole process, across restore swaps and
	// until shutdown has finished.
	wdCtx, wdStop := context.WithCancel(context.WithoutCancel(ctx))
	defer wdStop()
	go sd.Run(wdCtx)
	up, err := newUpgrades(wdStop)
	if err != nil {
		return err
	}
	err = run(ctx, cfg, o, log, sd, up)
	up.startFailed(err)
	return err
}

func run(ctx context.Context, cfg *config.Config, o Options, log *slog.Logger, sd *sdnotify.Notifier, up *upgrades) error {
	if err := firstStart(ctx, cfg, o, log); err != nil {
		return err
	}
	reg, err := listen.New(os.Getenv, os.Unsetenv)
	if err != nil {
		return err
	}
	defer reg.Close()
	// Started by an upgrade: the old process holds the store until asked.
	if err := up.awaitRelease(ctx, log); err != nil {
		return err
	}
	restored := ""
	for {
		next, err := runOnce(ctx, cfg, o, log, reg, sd, restored, up)
		if !errors.Is(err, errRestart) {
			return err
		}
		restored = next
	}
}

func firstStart(ctx context.Context, cfg *config.Config, o Options, log *slog.Logger) error {
	ok, err := initialised(cfg.Data)
	if err != nil || ok {
		return err
	}
	pass, err := ReadPassphraseFile(cfg.PassphraseFile)
	if err != nil {
		return err
	}
	res, err := Init(ctx, cfg.Data, pass, rand.Reader)
	if err != nil {
		return fmt.Errorf("initialising %s: %w", cfg.Data, err)
	}
	if o.Terminal != nil {
		WriteInitResult(o.Terminal, cfg.Data, res)
		return nil
	}
	// No terminal (a service): never put the secrets in the journal.
	path := cfg.Data + "/initial-credentials.txt"
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("writing initial credentials: %w", err)
	}
	defer f.Close()
	WriteInitResult(f, cfg.Data, res)
	log.Warn("initialised", "credentials_file", path, "details", "read it once, then delete it")
	return nil
}

// ReadPassphraseFile reads the backup passphrase of --passphrase-file
// ("" when no file is named), without its trailing newline.
func ReadPassphraseFile(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading --passphrase-file: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// runOnce starts every part, serves until ctx ends or a restore asks for a
// restart, and stops every part in reverse order.
//
// restored is the outcome of a restore that caused this start ("" when none).
func runOnce(ctx context.Context, cfg *config.Config, o Options, log *slog.Logger, reg *listen.Registry, sd *sdnotify.Notifier, restored string, up *upgrades) (string, error) {
	n := &Node{Config: cfg, Log: log, Metrics: metrics.NewSet(), Listen: reg, version: o.Version, started: time.Now(),
		restart: make(chan string, 1), restored: restored, sd: sd, up: up, upgrades: make(chan upgradeRequest)}
	n.Log = slog.New(newAlertTap(log.Handler(), &n.alertSink))
	// Three stop lists, so that an upgrade can stop what needs the store
	// while the data planes serve on.
	var r parts
	stopAll := func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
		defer cancel()
		stopInReverse(sctx, r.serving)
		stopInReverse(sctx, r.planeStops)
		stopInReverse(sctx, r.core)
	}
	if err := n.openCore(&r.core); err != nil {
		stopAll()
		return "", err
	}
	coreMetrics := n.Metrics.ListMetricNames()
	planes, err := n.startPlanes(o, &r.planeStops)
	if err != nil {
		stopAll()
		return "", err
	}
	r.notePlaneMetrics(n, coreMetrics)
	r.planes = trackUsage(planes)
	if err := n.serve(ctx, r.planes, &r.serving); err != nil {
		stopAll()
		return "", err
	}
	log.Info("api_ready", "duration_ms", float64(time.Since(n.started).Microseconds())/1000, "http", n.HTTPAddr.String())
	n.takeOver(ctx, r.planes) // a successor: once the old process has handed systemd over
	if err := sd.Ready(""); err != nil {
		log.Warn("sd_notify_failed", "error", err.Error())
	}
	if o.Started != nil {
		o.Started(n)
	}
	for {
		select {
		case <-ctx.Done():
			sd.Stopping("shutting down: draining connections")
			log.Info("shutting_down")
			stopAll()
			log.Info("stopped")
			return "", nil
		case req := <-n.upgrades:
			done, err := n.handOver(ctx, req, &r)
			if err != nil || done {
				stopAll()
				log.Info("stopped")
				return "", err
			}
			continue
		case staged := <-n.restart:
			sd.Status("restoring a backup: restarting on the restored database")
			stopAll()
			outcome := "restored"
			if err := n.swapIn(staged); err != nil {
				log.Error("restore_failed", "error", err.Error())
				outcome = "failed: " + err.Error()
			} else {
				log.Warn("restore_swapped", "backup_node", n.stagedManifest.Node, "backup_created", n.stagedManifest.Created)
			}
			return outcome, errRestart
		}
	}
}

// openCore opens the store, the keys, the cache and the service layer.
func (n *Node) openCore(stops *[]func(context.Context)) error {
	cfg := n.Config
	st, err := store.Open(store.Options{Path: dbPath(cfg.Data), Logger: logging.ForService(n.Log, "store"), Metrics: n.Metrics})
	if err != nil {
		return err
	}
	n.Store = st
	*stops = append(*stops, func(context.Context) { st.Close() })
	registerDiskMetrics(n.Metrics, cfg.Data, time.Now, func(err error) { n.Log.Warn("disk_metrics_failed", "details", err.Error()) })
	nodeKey, _, err := keyring.LoadNodeKey(cfg.Data, credDir(), false, rand.Reader)
	if err != nil {
		return err
	}
	if n.sec, err = openSecrets(st, nodeKey, rand.Reader); err != nil {
		return err
	}
	if n.cache, err = cache.New(cache.Options{MaxBytes: int64(cfg.CacheMB) << 20, Metrics: n.Metrics}); err != nil {
		return err
	}
	*stops = append(*stops, func(context.Context) { n.cache.Close() })
	n.Egress, err = egress.New(egress.Options{Allow: cfg.EgressAllow, Deny: cfg.EgressDeny, Metrics: n.Metrics})
	if err != nil {
		return err
	}
	if err := n.claimPublic(stops); err != nil {
		return err
	}
	n.Service, err = app.New(app.Options{Store: st, DataKey: n.sec.dataKey, Cache: n.cache, Node: cfg.Node,
		Logger: logging.ForService(n.Log, "app"), Ends: n.endpoints(), WGPool4: cfg.WGV4Pool, WGPool6: cfg.WGV6Pool,
		AdminIDs: cfg.AdminIDs})
	if err != nil {
		return err
	}
	n.useStoredBotToken()
	return nil
}

// endpoints derives what client configs point at from the settings.
func (n *Node) endpoints() app.Endpoints {
	cfg := n.Config
	host := cfg.PublicHost
	if host == "" {
		host = guessPublicHost()
	}
	return app.Endpoints{PublicHost: host, WGPort: port(cfg.WGListen), WGPublicKey: n.sec.wgPublic,
		SSPort: port(cfg.SSListen), MTProtoPort: port(cfg.MTProtoListen), PublicPort: n.publicPort(), CloakDomain: cfg.MTProtoDomain}
}

func port(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	v, _ := strconv.Atoi(p)
	return v
}

// guessPublicHost picks the first global unicast address of the machine, the
// best default for a VPS with a public address on its interface.
func guessPublicHost() string {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().IsGlobalUnicast() && !p.Addr().IsPrivate() {
			return p.Addr().String()
		}
	}
	return "127.0.0.1"
}
