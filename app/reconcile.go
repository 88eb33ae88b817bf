package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/usipipo/usipipo/app/plane"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// ReconcilerOptions configure a Reconciler. Service is required.
type ReconcilerOptions struct {
	Service       *Service
	Planes        []plane.Plane
	UsageInterval time.Duration // default 10s
	Debounce      time.Duration // wait after a change before pushing, default 100ms
	Metrics       *metrics.Set
	Logger        *slog.Logger
}

// Reconciler pushes the desired credentials to every data plane and pulls
// their usage back: on start, soon after every committed change, and every
// UsageInterval.
type Reconciler struct {
	svc      *Service
	planes   []plane.Plane
	interval time.Duration
	debounce time.Duration
	log      *slog.Logger

	// Owned by the Run goroutine.
	readings map[string]planeReading
	known    map[string]knownCred // decoded credentials by id, of the version seen last
	lastEnd  time.Time

	mu        sync.Mutex // guards installed, which Installed reads from other goroutines
	installed map[string]int

	lastCollect *metrics.Gauge
	collectErrs *metrics.Counter
	applyErrs   *metrics.Counter
	status      *planeStatus
	ready       chan struct{}
}

// planeReading is the last counters of a plane whose deltas are committed.
type planeReading struct {
	epoch  string
	counts map[string]plane.Counter
}

// NewReconciler returns a Reconciler; Run starts it.
func NewReconciler(o ReconcilerOptions) *Reconciler {
	if o.UsageInterval <= 0 {
		o.UsageInterval = 10 * time.Second
	}
	if o.Debounce <= 0 {
		o.Debounce = 100 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = metrics.NewSet()
	}
	r := &Reconciler{svc: o.Service, planes: o.Planes, interval: o.UsageInterval, debounce: o.Debounce, log: o.Logger,
		readings: map[string]planeReading{}, known: map[string]knownCred{}, installed: map[string]int{}, ready: make(chan struct{})}
	r.lastCollect = o.Metrics.NewGauge("usipipo_usage_last_collect_timestamp_seconds", nil)
	r.collectErrs = o.Metrics.NewCounter("usipipo_usage_collect_errors_total")
	r.applyErrs = o.Metrics.NewCounter("usipipo_reconcile_errors_total")
	names := make([]string, len(o.Planes))
	for i, p := range o.Planes {
		names[i] = p.Name()
	}
	r.status = newPlaneStatus(o.Metrics, names)
	return r
}

// Ready is closed after the first push of desired state to every plane
// ("data planes installed").
func (r *Reconciler) Ready() <-chan struct{} { return r.ready }

// Run reconciles until ctx ends.
func (r *Reconciler) Run(ctx context.Context) error {
	r.lastEnd = r.svc.now().UTC()
	r.pushAll(ctx)
	close(r.ready)
	tick := time.NewTicker(r.interval)
	defer tick.Stop()
	sweep := time.NewTicker(time.Minute)
	defer sweep.Stop()
	var debounce <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			r.collect(context.WithoutCancel(ctx)) // keep the last interval's bytes
			return nil
		case <-r.svc.st.Changes():
			if debounce == nil {
				debounce = time.After(r.debounce)
			}
		case <-debounce:
			debounce = nil
			r.pushAll(ctx)
		case <-tick.C:
			r.collect(ctx)
			r.pushAll(ctx)
		case <-sweep.C:
			r.expire(ctx)
		}
	}
}

// pushAll hands every plane its desired set.
func (r *Reconciler) pushAll(ctx context.Context) {
	all, complete := map[string]struct{}{}, true
	for _, p := range r.planes {
		users := map[string]struct{}{}
		creds, err := r.desiredFor(p, users)
		if err == nil {
			err = p.Apply(ctx, creds)
		}
		if err != nil {
			r.applyErrs.Inc()
			r.status.pushed(p.Name(), false, 0, 0)
			r.log.Error("reconcile_failed", "plane", p.Name(), "error", err.Error())
			complete = false
			continue
		}
		r.mu.Lock()
		r.installed[p.Name()] = len(creds)
		r.mu.Unlock()
		r.status.pushed(p.Name(), true, len(creds), len(users))
		maps.Copy(all, users)
	}
	if complete {
		r.status.activeUsers(len(all))
	}
}

// Installed reports how many credentials each plane was last handed.
func (r *Reconciler) Installed() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.installed)
}

// Sync runs one collect and push, for tests and for shutdown.
func (r *Reconciler) Sync(ctx context.Context) {
	if r.lastEnd.IsZero() {
		r.lastEnd = r.svc.now().UTC()
	}
	r.collect(ctx)
	r.pushAll(ctx)
}

// desired builds a plane's credential set from the store: active keys (or
// proxies) of its types, of users neither banned nor erased, not yet expired.
// Only records whose version changed since the last pass are decoded and
// their secrets opened; the rest come from r.known.
func (r *Reconciler) desired(p plane.Plane) ([]plane.Credential, error) { return r.desiredFor(p, nil) }

// desiredFor is desired, also adding the id of every user with a
// credential in the set to users (if not nil).
func (r *Reconciler) desiredFor(p plane.Plane, users map[string]struct{}) ([]plane.Credential, error) {
	now := r.svc.now()
	reading := r.readings[p.Name()]
	blocked, err := r.svc.st.BlockedUsers()
	if err != nil {
		return nil, err
	}
	var out []plane.Credential
	for _, t := range p.Types() {
		proxy := t == model.MTProto
		err := r.svc.st.EachActiveVersion(proxy, func(userID, id string, version uint64) error {
			if blocked[userID] {
				return nil
			}
			k, ok := r.known[id]
			if !ok || k.cred.Version != version {
				var err error
				if k, err = r.load(id, proxy); err != nil {
					return err
				}
				if k.cred.Type != t {
					return nil
				}
				r.known[id] = k
			}
			if k.cred.Type != t || (!k.cred.Limits.ExpiresAt.IsZero() && !now.Before(k.cred.Limits.ExpiresAt)) {
				return nil
			}
			c := k.cred
			c.Budget, c.Mark, c.MarkEpoch = plane.NoBudget, 0, reading.epoch
			if cnt, ok := reading.counts[id]; ok {
				c.Mark = cnt.Rx + cnt.Tx
			}
			if c.Limits.DataCap > 0 {
				u, err := r.svc.st.Usage(id)
				if err != nil {
					return err
				}
				used := u.Total() - min(u.Total(), k.capBase)
				c.Budget = c.Limits.DataCap - min(used, c.Limits.DataCap)
			}
			out = append(out, c)
			if users != nil {
				users[userID] = struct{}{}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("desired %s credentials: %w", t, err)
		}
	}
	return out, nil
}

// knownCred is a decoded credential of a given record version.
type knownCred struct {
	cred    plane.Credential
	capBase uint64
}

func (r *Reconciler) load(id string, proxy bool) (knownCred, error) {
	if proxy {
		x, err := r.svc.st.Proxy(id)
		if err != nil {
			return knownCred{}, err
		}
		secret, err := r.svc.open(recProxy, x.ID, x.Version, x.Secret)
		if err != nil {
			return knownCred{}, err
		}
		return knownCred{cred: plane.Credential{ID: x.ID, Version: x.Version, Type: model.MTProto, Secret: secret,
			Limits: x.Limits}, capBase: x.CapBase}, nil
	}
	k, err := r.svc.st.Key(id)
	if err != nil {
		return knownCred{}, err
	}
	secret, err := r.svc.open(recKey, k.ID, k.Version, k.Secret)
	if err != nil {
		return knownCred{}, err
	}
	return knownCred{cred: plane.Credential{ID: k.ID, Version: k.Version, Type: k.Type, Secret: secret, Public: k.Public,
		AddrV4: k.AddrV4, AddrV6: k.AddrV6, Limits: k.Limits}, capBase: k.CapBase}, nil
}

// collect reads every plane's counters, turns them into deltas against the
// last committed reading, and commits them as one UsageBatch plus the hourly
// telemetry. On failure the readings stay, so the bytes are counted next time.
func (r *Reconciler) collect(ctx context.Context) {
	end := r.svc.now().UTC()
	if !end.After(r.lastEnd) {
		return
	}
	var deltas []store.UsageDelta
	var samples []store.UsageSample
	next := map[string]planeReading{}
	for _, p := range r.planes {
		snap, err := p.Counters(ctx)
		r.status.collected(p.Name(), err == nil, conns(snap))
		if err != nil {
			r.collectErrs.Inc()
			r.log.Error("usage_read_failed", "plane", p.Name(), "error", err.Error())
			continue
		}
		prev := r.readings[p.Name()]
		cur := planeReading{epoch: snap.Epoch, counts: make(map[string]plane.Counter, len(snap.Counters))}
		for _, c := range snap.Counters {
			cur.counts[c.ID] = c
			d := delta(prev, snap.Epoch, c)
			if d.Rx == 0 && d.Tx == 0 {
				continue
			}
			deltas = append(deltas, store.UsageDelta{ID: c.ID, Rx: d.Rx, Tx: d.Tx, LastSeen: c.LastSeen.UTC()})
			samples = append(samples, store.UsageSample{ID: c.ID, Rx: d.Rx, Tx: d.Tx})
		}
		next[p.Name()] = cur
	}
	if len(deltas) > 0 {
		batch := store.UsageBatch{Node: r.svc.node, Start: r.lastEnd, End: end, Deltas: deltas}
		err := r.svc.st.Do(ctx, store.Meta{At: end, Actor: string(ActorSystem)}, batch)
		if err != nil && !errors.Is(err, model.ErrExists) {
			r.collectErrs.Inc()
			r.log.Error("usage_commit_failed", "deltas", len(deltas), "error", err.Error())
			return
		}
		if err := r.svc.st.RecordUsage(end, samples); err != nil {
			r.log.Warn("usage_telemetry_failed", "error", err.Error())
		}
	}
	for name, rd := range next {
		r.readings[name] = rd
	}
	r.lastEnd = end
	r.lastCollect.Set(float64(end.Unix()))
}

// delta is what a counter moved since the committed reading. A new epoch (a
// restarted plane) or a counter that went backwards starts from zero, so a
// restart never makes a counter jump or revert.
func delta(prev planeReading, epoch string, c plane.Counter) plane.Counter {
	old, ok := prev.counts[c.ID]
	if !ok || prev.epoch != epoch || c.Rx < old.Rx || c.Tx < old.Tx {
		return plane.Counter{Rx: c.Rx, Tx: c.Tx}
	}
	return plane.Counter{Rx: c.Rx - old.Rx, Tx: c.Tx - old.Tx}
}

// expire records keys whose expiry passed; the planes already stopped them.
func (r *Reconciler) expire(ctx context.Context) {
	now := r.svc.now().UTC()
	ids, err := r.svc.st.KeysExpiredAt(now, 1000)
	if err != nil || len(ids) == 0 {
		return
	}
	if err := r.svc.st.Do(ctx, store.Meta{At: now, Actor: string(ActorSystem)}, store.ExpireKeys{KeyIDs: ids}); err != nil {
		r.log.Error("expiry_sweep_failed", "error", err.Error())
	}
}

// conns is the open connections over a plane's counters.
func conns(s plane.Snapshot) int {
	n := 0
	for _, c := range s.Counters {
		n += c.Conns
	}
	return n
}
