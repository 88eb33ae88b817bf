package pay

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// PollerOptions configure a Poller. API, Intake and Token are required.
type PollerOptions struct {
	API    *BotAPI
	Intake *Intake
	Token  string // the bot token: one poller per token
	// LockDir holds a lock file per token so that two processes on one host
	// (two data dirs) never poll the same bot; "" locks within the process.
	LockDir string
	Timeout time.Duration // long-poll timeout; default 25 s
	Limit   int           // updates per call, 1..100; default 100
	// AllowedUpdates is passed to getUpdates; default: every type payments
	// and the bot need.
	AllowedUpdates []string
	Logger         *slog.Logger
}

// Poller is our long poller on getUpdates. It persists each batch before
// its offset is confirmed to Telegram, processes updates once by update_id,
// and resumes the unprocessed ones after a restart.
type Poller struct {
	o      PollerOptions
	key    string
	lockFD int

	closeOnce sync.Once
}

var (
	pollersMu sync.Mutex
	pollers   = map[string]bool{} // token hashes with a poller in this process
)

// NewPoller claims the token (ErrPollerRunning when another poller holds it)
// and returns a poller; Run starts it, Close releases the token.
func NewPoller(o PollerOptions) (*Poller, error) {
	if o.API == nil || o.Intake == nil || o.Token == "" {
		return nil, fmt.Errorf("poller needs an API client, an intake and the token: %w", ErrNoProvider)
	}
	if o.Timeout <= 0 {
		o.Timeout = 25 * time.Second
	}
	if o.Limit <= 0 || o.Limit > 100 {
		o.Limit = 100
	}
	if o.AllowedUpdates == nil {
		o.AllowedUpdates = AllowedUpdates()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	sum := sha256.Sum256([]byte("usipipo-poller\x00" + o.Token))
	p := &Poller{o: o, key: hex.EncodeToString(sum[:8]), lockFD: -1}
	pollersMu.Lock()
	defer pollersMu.Unlock()
	if pollers[p.key] {
		return nil, ErrPollerRunning
	}
	if o.LockDir != "" {
		fd, err := syscall.Open(filepath.Join(o.LockDir, "tgpoll-"+p.key+".lock"), syscall.O_CREAT|syscall.O_RDWR|syscall.O_CLOEXEC, 0o600)
		if err != nil {
			return nil, fmt.Errorf("poller lock: %w", err)
		}
		if err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			syscall.Close(fd)
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, ErrPollerRunning
			}
			return nil, fmt.Errorf("poller lock: %w", err)
		}
		p.lockFD = fd
	}
	pollers[p.key] = true
	return p, nil
}

// Close releases the token. It does not stop Run: cancel its context.
func (p *Poller) Close() error {
	p.closeOnce.Do(func() {
		pollersMu.Lock()
		delete(pollers, p.key)
		pollersMu.Unlock()
		if p.lockFD >= 0 {
			syscall.Close(p.lockFD)
		}
	})
	return nil
}

// Run resumes the updates persisted but not processed, then polls until ctx
// ends: each batch is dispatched to the processing lanes and persisted at
// once; only then does the next getUpdates confirm it (by its offset).
// Updates whose handling failed are dispatched again about every second.
// Transient failures back off and retry; it returns ctx's error once what
// was dispatched has finished.
func (p *Poller) Run(ctx context.Context) error {
	in := p.o.Intake
	if err := in.prune(); err != nil {
		p.o.Logger.Warn("update_receipts_prune", "service", "pay", "details", err.Error())
	}
	offset, err := in.offset()
	if err != nil {
		return err
	}
	pl := in.startPipeline(ctx)
	defer pl.stop()
	var lastScan time.Time
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		if backoff > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(backoff):
			}
		}
		// Leftovers: after a restart, or updates whose handling failed.
		retrying := false
		if time.Since(lastScan) >= time.Second {
			lastScan = time.Now()
			pending, err := in.Pending()
			if err != nil {
				p.o.Logger.Warn("update_resume", "service", "pay", "details", err.Error())
			}
			pl.dispatch(pending)
			retrying = len(pending) > 0
		}
		timeout := p.o.Timeout
		if retrying || !pl.idle() {
			timeout = min(timeout, time.Second) // come back to the leftovers soon
		}
		var raws []json.RawMessage
		err = p.o.API.Call(ctx, "getUpdates", map[string]any{"offset": offset, "limit": p.o.Limit,
			"timeout": int(timeout / time.Second), "allowed_updates": p.o.AllowedUpdates}, &raws)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			var ae *APIError
			if errors.As(err, &ae) && ae.RetryAfter > 0 {
				backoff = time.Duration(ae.RetryAfter) * time.Second
			} else {
				backoff = nextBackoff(backoff)
			}
			p.o.Logger.Warn("get_updates", "service", "pay", "details", err.Error())
			continue
		}
		backoff = 0
		if len(raws) == 0 {
			continue
		}
		next := offset
		for _, raw := range raws {
			var id struct {
				ID int64 `json:"update_id"`
			}
			if json.Unmarshal(raw, &id) == nil && id.ID >= next {
				next = id.ID + 1
			}
		}
		ups, err := in.admit(raws)
		if err == nil && !in.persistFirst {
			// The lanes start while the batch is fsynced: a crash before the
			// fsync leaves the offset unconfirmed, so Telegram sends the
			// batch again, as after a crash before the receipts.
			pl.dispatch(ups)
		}
		if err == nil {
			err = in.persist(ups, next)
		}
		if err != nil {
			// Not persisted: the offset is not advanced, Telegram sends them again.
			p.o.Logger.Error("update_persist", "service", "pay", "details", err.Error())
			backoff = nextBackoff(backoff)
			continue
		}
		offset = next
		if in.persistFirst {
			pl.dispatch(ups)
		}
	}
	return ctx.Err()
}

func nextBackoff(d time.Duration) time.Duration {
	if d == 0 {
		return 200 * time.Millisecond
	}
	return min(d*2, 30*time.Second)
}
