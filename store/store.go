package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// ErrLocked means another process holds the database file (bbolt's flock):
// usually a running node.
var ErrLocked = errors.New("database is in use by another process (is a node running?)")

// ErrClosed is returned by Do after Close.
var ErrClosed = errors.New("store is closed")

// Options configure Open. Path is required.
type Options struct {
	Path     string
	Logger   *slog.Logger  // nil: discard
	Metrics  *metrics.Set  // nil: a private set
	MaxBatch int           // commands per group commit, default 1024
	ReadOnly bool          // for doctor and offline backups
	Timeout  time.Duration // wait for the file lock, default 500ms
}

// Store is an open usipipo database with its group committer.
type Store struct {
	db   *bolt.DB
	log  *slog.Logger
	path string

	changes   chan struct{}
	queue     chan *request
	stop      context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
	mu        sync.RWMutex // held for writing by Close so Do never sends on a dead queue
	closed    bool

	m storeMetrics
}

type storeMetrics struct {
	applied, rejected, failed *metrics.Counter
	commit                    *metrics.PrometheusHistogram
	batch                     *metrics.PrometheusHistogram
}

// batchBuckets are the upper bounds of commands per group commit (MaxBatch
// is 1024 by default): Prometheus le buckets, like every other histogram we
// export, so histogram_quantile works on it (VictoriaMetrics' own histogram
// writes vmrange buckets, which Prometheus cannot take a quantile of).
var batchBuckets = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}

// Open opens (creating if needed) the database at opts.Path, migrates its
// schema forward and starts the group committer.
func Open(opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.NewSet()
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 1024
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 500 * time.Millisecond
	}
	db, err := bolt.Open(opts.Path, 0o600, &bolt.Options{
		Timeout:  opts.Timeout,
		ReadOnly: opts.ReadOnly,
		// The freelist is synced with each commit: opening then reads it
		// instead of scanning every page, which takes "API ready" on 100,000
		// users from ~300 ms to ~30 ms and keeps the untouched file out of
		// memory.
		NoFreelistSync: false,
		FreelistType:   bolt.FreelistMapType,
		// Address space, not memory: writers rarely need to remap the file,
		// which would wait for long readers such as a running backup.
		InitialMmapSize: 1 << 30,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("opening %s: %w", opts.Path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", opts.Path, err)
	}
	s := &Store{db: db, log: opts.Logger, path: opts.Path, m: newStoreMetrics(opts.Metrics)}
	if !opts.ReadOnly {
		if err := s.migrate(); err != nil {
			db.Close()
			return nil, err
		}
	} else if err := s.checkSchema(); err != nil {
		db.Close()
		return nil, err
	}
	opts.Metrics.NewGauge("usipipo_db_size_bytes", func() float64 {
		fi, err := os.Stat(opts.Path)
		if err != nil {
			return 0
		}
		return float64(fi.Size())
	})
	ctx, cancel := context.WithCancel(context.Background())
	s.changes = make(chan struct{}, 1)
	s.queue = make(chan *request, opts.MaxBatch*4)
	s.stop = cancel
	s.done = make(chan struct{})
	go s.commitLoop(ctx, opts.MaxBatch)
	return s, nil
}

func newStoreMetrics(set *metrics.Set) storeMetrics {
	return storeMetrics{
		applied:  set.NewCounter(`usipipo_store_commands_total{result="applied"}`),
		rejected: set.NewCounter(`usipipo_store_commands_total{result="rejected"}`),
		failed:   set.NewCounter(`usipipo_store_commands_total{result="failed"}`),
		commit:   set.NewPrometheusHistogram("usipipo_store_commit_duration_seconds"),
		batch:    set.NewPrometheusHistogramExt("usipipo_store_batch_size", batchBuckets),
	}
}

// Changes signals, coalesced, that a commit applied at least one command.
// It has one consumer: the reconcile loop.
func (s *Store) Changes() <-chan struct{} { return s.changes }

// Path is the database file.
func (s *Store) Path() string { return s.path }

// DB exposes the bbolt handle to the store's own helpers in other packages
// (backup, doctor). Writes must go through commands.
func (s *Store) DB() *bolt.DB { return s.db }

// Close stops the committer after it has finished the commands already
// queued, then closes the file. It is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		if s.stop != nil {
			s.stop()
			<-s.done
		}
		s.closeErr = s.db.Close()
	})
	return s.closeErr
}
