package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/usipipo/usipipo/app/logging"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/keyring"
)

// SchedulerOptions configure a Scheduler. Store, DataKey, PassKey and Dir are
// required.
type SchedulerOptions struct {
	Store   *store.Store
	DataKey keyring.Key
	PassKey keyring.PassKey // from `usipipo init`, kept sealed in the store
	Dir     string          // DATA/backups; created 0700
	Every   time.Duration   // default 24h
	Keep    int             // newest verified backups kept, default 7
	Node    string          // for the manifest
	Version string          // binary version, for the manifest
	Logger  *slog.Logger    // nil: discard
	Metrics *metrics.Set    // nil: a private set
	Now     func() time.Time
	Rand    io.Reader // nil: crypto/rand
}

// retryAfter is the delay after a failed scheduled backup, if shorter than Every.
const retryAfter = 15 * time.Minute

// Scheduler writes verified backups to Dir on a timer (Run) or on demand
// (BackupNow).
type Scheduler struct {
	o SchedulerOptions

	mu sync.Mutex // held for a whole backup: one at a time

	lastSuccess *metrics.Gauge
	size        *metrics.Gauge
	failures    *metrics.Counter

	// afterWrite, when set (tests), runs on the written file before it is
	// verified.
	afterWrite func(path string)
}

// NewScheduler checks o, creates Dir (0700), removes what an interrupted
// backup left there, and registers the metrics
// usipipo_backup_last_success_timestamp_seconds (from the newest existing
// backup until a new one is written), usipipo_backup_failures_total and
// usipipo_backup_size_bytes. Run starts it.
func NewScheduler(o SchedulerOptions) (*Scheduler, error) {
	switch {
	case o.Store == nil:
		return nil, errors.New("backup scheduler: Store is required")
	case o.DataKey.IsZero():
		return nil, errors.New("backup scheduler: DataKey is required")
	case o.Dir == "":
		return nil, errors.New("backup scheduler: Dir is required")
	}
	if _, err := o.PassKey.MarshalBinary(); err != nil {
		return nil, errors.New("backup scheduler: PassKey is required")
	}
	if o.Every <= 0 {
		o.Every = 24 * time.Hour
	}
	if o.Keep <= 0 {
		o.Keep = 7
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = metrics.NewSet()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("backup scheduler: %w", err)
	}
	if err := os.Chmod(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("backup scheduler: %w", err)
	}
	if err := removeLeftovers(o.Dir); err != nil {
		return nil, fmt.Errorf("backup scheduler: removing leftovers: %w", err)
	}
	s := &Scheduler{
		o:           o,
		lastSuccess: o.Metrics.GetOrCreateGauge("usipipo_backup_last_success_timestamp_seconds", nil),
		size:        o.Metrics.GetOrCreateGauge("usipipo_backup_size_bytes", nil),
		failures:    o.Metrics.GetOrCreateCounter("usipipo_backup_failures_total"),
	}
	files, err := listBackups(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("backup scheduler: %w", err)
	}
	if len(files) > 0 {
		s.lastSuccess.Set(float64(files[0].at.Unix()))
		if fi, err := os.Stat(filepath.Join(o.Dir, files[0].name)); err == nil {
			s.size.Set(float64(fi.Size()))
		}
	}
	return s, nil
}

// Run takes a backup Every after the newest one in Dir — at once when there
// is none or it is older than Every — and then every Every (after a failure,
// again within 15 minutes), until ctx ends; then it returns nil. A backup in
// progress is cancelled with ctx and leaves nothing behind.
func (s *Scheduler) Run(ctx context.Context) error {
	t := time.NewTimer(s.firstDelay())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		next := s.o.Every
		if _, err := s.BackupNow(ctx); err != nil && ctx.Err() == nil {
			next = min(next, retryAfter)
		}
		t.Reset(next)
	}
}

func (s *Scheduler) firstDelay() time.Duration {
	files, err := listBackups(s.o.Dir)
	if err != nil || len(files) == 0 {
		return 0
	}
	age := s.o.Now().Sub(files[0].at)
	if age >= s.o.Every {
		return 0
	}
	return s.o.Every - max(age, 0)
}

// BackupNow writes a backup to Dir as usipipo-<UTC time>.bak (0600): first
// to a .tmp file, which it reads back with ReadWithPassKey into a scratch
// directory and deletes if that fails; only a verified file gets its final
// name. Then it deletes all but the newest Keep backups. Every failure but a
// cancellation is logged and counted in usipipo_backup_failures_total.
func (s *Scheduler) BackupNow(ctx context.Context) (path string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	start := time.Now()
	now := s.o.Now().UTC().Truncate(time.Second)
	name, err := freeName(s.o.Dir, now)
	if err == nil {
		path = filepath.Join(s.o.Dir, name)
		err = s.writeVerified(ctx, path, now)
	}
	if err != nil {
		if ctx.Err() == nil {
			s.failures.Inc()
			s.o.Logger.Error("backup_failed", "dir", s.o.Dir, "error", err.Error())
		}
		return "", fmt.Errorf("scheduled backup: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("scheduled backup: %w", err)
	}
	s.lastSuccess.Set(float64(now.Unix()))
	s.size.Set(float64(fi.Size()))
	s.o.Logger.Info("backup_written", "path", path, "size_bytes", fi.Size(), logging.Duration(time.Since(start)))
	s.prune()
	return path, nil
}

// writeVerified writes the backup to path+".tmp", verifies it and renames
// it to path; on error it leaves nothing.
func (s *Scheduler) writeVerified(ctx context.Context, path string, now time.Time) (err error) {
	tmp := path + tmpExt
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	m, err := s.write(ctx, tmp, now)
	if err != nil {
		return err
	}
	if s.afterWrite != nil {
		s.afterWrite(tmp)
	}
	if err := s.verify(ctx, tmp, m); err != nil {
		return fmt.Errorf("verifying %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if err := syncDir(s.o.Dir); err != nil {
		return fmt.Errorf("syncing %s: %w", s.o.Dir, err)
	}
	return nil
}

func (s *Scheduler) write(ctx context.Context, tmp string, now time.Time) (*Manifest, error) {
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	info := Manifest{Node: s.o.Node, Version: s.o.Version, Created: now}
	m, err := Write(ctx, f, s.o.Store, s.o.DataKey, s.o.PassKey, info, s.o.Rand)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// verify restores the file into a scratch directory beside it (same file
// system, same permissions) and compares the manifests.
func (s *Scheduler) verify(ctx context.Context, file string, want *Manifest) error {
	scratch, err := os.MkdirTemp(s.o.Dir, verifyGlob)
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	got, _, err := ReadWithPassKey(ctx, f, s.o.PassKey, scratch)
	if err != nil {
		return err
	}
	if got.DBSHA256 != want.DBSHA256 || got.DBSize != want.DBSize || !got.Created.Equal(want.Created) {
		return fmt.Errorf("read back a different backup: %w", ErrCorrupt)
	}
	return nil
}

// prune deletes all but the newest Keep backups, logging what it cannot.
func (s *Scheduler) prune() {
	files, err := listBackups(s.o.Dir)
	if err != nil {
		s.o.Logger.Warn("backup_prune_failed", "error", err.Error())
		return
	}
	for _, f := range files[min(len(files), s.o.Keep):] {
		if err := os.Remove(filepath.Join(s.o.Dir, f.name)); err != nil {
			s.o.Logger.Warn("backup_prune_failed", "file", f.name, "error", err.Error())
		}
	}
}
