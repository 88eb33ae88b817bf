package cache

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// waitForWaiters spins until n callers wait on k's flight. It has no
// deadline: if they never arrive the test times out, which is the failure.
func waitForWaiters(c *Cache, k Key, n int) {
	for c.flights.waiting(k) < n {
		runtime.Gosched()
	}
}

func TestGetOrComputeSingleflight(t *testing.T) {
	disabled, err := New(Options{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	for _, tt := range []struct {
		name string
		c    *Cache
	}{
		{"enabled", newTestCache(t, Options{})},
		{"disabled", disabled},
	} {
		t.Run(tt.name, func(t *testing.T) {
			const n = 100
			k := Key{Kind: "key", ID: "k1", Version: 1, Variant: "qr-png"}
			release := make(chan struct{})
			var computes atomic.Int32
			compute := func() ([]byte, int64, error) {
				computes.Add(1)
				<-release
				return []byte("png"), 3, nil
			}
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for range n {
				wg.Go(func() {
					v, err := GetOrCompute(context.Background(), tt.c, k, Configs, compute)
					if err == nil && string(v) != "png" {
						err = errors.New("wrong value " + string(v))
					}
					errs <- err
				})
			}
			waitForWaiters(tt.c, k, n-1)
			close(release)
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatalf("GetOrCompute: %v", err)
				}
			}
			if got := computes.Load(); got != 1 {
				t.Fatalf("compute ran %d times for %d concurrent callers, want 1", got, n)
			}
		})
	}
}

func TestGetOrComputeDoesNotCacheErrors(t *testing.T) {
	c := newTestCache(t, Options{})
	k := Key{Kind: "key", ID: "k1", Version: 1}
	errBoom := errors.New("boom")
	calls := 0
	compute := func() (string, int64, error) {
		calls++
		if calls == 1 {
			return "partial", 7, errBoom
		}
		return "ok", 2, nil
	}
	steps := []struct {
		want      string
		wantErr   error
		wantCalls int
	}{
		{"", errBoom, 1},
		{"ok", nil, 2},
		{"ok", nil, 2}, // now a hit
	}
	for i, s := range steps {
		got, err := GetOrCompute(context.Background(), c, k, Users, compute)
		c.Wait()
		if !errors.Is(err, s.wantErr) || got != s.want || calls != s.wantCalls {
			t.Fatalf("step %d: got %q, %v after %d calls; want %q, %v after %d",
				i, got, err, calls, s.want, s.wantErr, s.wantCalls)
		}
	}
}

func TestGetOrComputeWaitersShareError(t *testing.T) {
	c := newTestCache(t, Options{})
	k := Key{Kind: "key", ID: "k1", Version: 1}
	errBoom := errors.New("boom")
	release := make(chan struct{})
	leaderErr := make(chan error, 1)
	go func() {
		_, err := GetOrCompute(context.Background(), c, k, Users, func() (string, int64, error) {
			<-release
			return "", 0, errBoom
		})
		leaderErr <- err
	}()
	waiterErr := make(chan error, 1)
	go func() {
		waitForFlight(c, k)
		_, err := GetOrCompute(context.Background(), c, k, Users, func() (string, int64, error) {
			return "", 0, errors.New("waiter must not compute")
		})
		waiterErr <- err
	}()
	waitForWaiters(c, k, 1)
	close(release)
	for _, ch := range []chan error{leaderErr, waiterErr} {
		if err := <-ch; !errors.Is(err, errBoom) {
			t.Fatalf("err = %v, want boom", err)
		}
	}
}

// waitForFlight spins until some caller leads a flight for k.
func waitForFlight(c *Cache, k Key) {
	for {
		c.flights.mu.Lock()
		_, ok := c.flights.m[k]
		c.flights.mu.Unlock()
		if ok {
			return
		}
		runtime.Gosched()
	}
}

func TestGetOrComputePanicReleasesWaiters(t *testing.T) {
	c := newTestCache(t, Options{})
	k := Key{Kind: "key", ID: "k1", Version: 1}
	release := make(chan struct{})
	recovered := make(chan any, 1)
	go func() {
		defer func() { recovered <- recover() }()
		_, _ = GetOrCompute(context.Background(), c, k, Users, func() (string, int64, error) {
			<-release
			panic("render bug")
		})
	}()
	waitForFlight(c, k)
	waiterErr := make(chan error, 1)
	go func() {
		_, err := GetOrCompute(context.Background(), c, k, Users, func() (string, int64, error) {
			return "", 0, errors.New("waiter must not compute")
		})
		waiterErr <- err
	}()
	waitForWaiters(c, k, 1)
	close(release)
	if r := <-recovered; r != "render bug" {
		t.Fatalf("leader recovered %v, want the compute's panic", r)
	}
	if err := <-waiterErr; !errors.Is(err, ErrComputePanicked) {
		t.Fatalf("waiter err = %v, want ErrComputePanicked", err)
	}
	got, err := GetOrCompute(context.Background(), c, k, Users, func() (string, int64, error) {
		return "fixed", 5, nil
	})
	if err != nil || got != "fixed" {
		t.Fatalf("GetOrCompute after panic = %q, %v", got, err)
	}
}

func TestGetOrComputeContext(t *testing.T) {
	c := newTestCache(t, Options{})
	k := Key{Kind: "key", ID: "k1", Version: 1}

	t.Run("cancelled before miss", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := GetOrCompute(ctx, c, k, Users, func() (string, int64, error) {
			t.Error("compute ran with a cancelled context")
			return "", 0, nil
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})

	t.Run("waiter leaves on cancel", func(t *testing.T) {
		release := make(chan struct{})
		leaderDone := make(chan error, 1)
		go func() {
			_, err := GetOrCompute(context.Background(), c, k, Users, func() (string, int64, error) {
				<-release
				return "v", 1, nil
			})
			leaderDone <- err
		}()
		waitForFlight(c, k)
		ctx, cancel := context.WithCancel(context.Background())
		waiterErr := make(chan error, 1)
		go func() {
			_, err := GetOrCompute(ctx, c, k, Users, func() (string, int64, error) {
				return "", 0, errors.New("waiter must not compute")
			})
			waiterErr <- err
		}()
		waitForWaiters(c, k, 1)
		cancel()
		if err := <-waiterErr; !errors.Is(err, context.Canceled) {
			t.Fatalf("waiter err = %v, want context.Canceled", err)
		}
		close(release)
		if err := <-leaderDone; err != nil {
			t.Fatalf("leader err = %v", err)
		}
	})
}
