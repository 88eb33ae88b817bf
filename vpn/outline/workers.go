package outline

import (
	"context"
	"sync"
	"time"
)

// workerIdle is how long a worker waits for more work before it ends.
const workerIdle = 10 * time.Second

// workers runs the server's per-connection functions on goroutines that
// outlive one connection. A new goroutine starts with a small stack that
// every connection's dial and relay grow again (about 6% of the CPU of a
// short connection went to copying stacks); a reused one keeps its grown
// stack, and most connections need no goroutine start at all.
type workers struct {
	ctx  context.Context
	wg   *sync.WaitGroup
	work chan func() // unbuffered: a send succeeds only when a worker waits
}

func newWorkers(ctx context.Context, wg *sync.WaitGroup) *workers {
	return &workers{ctx: ctx, wg: wg, work: make(chan func())}
}

// Go runs f on an idle worker, or on a new one when none waits. The
// server's WaitGroup counts every worker, so Close waits for them.
func (w *workers) Go(f func()) {
	select {
	case w.work <- f:
	default:
		w.wg.Go(func() { w.loop(f) })
	}
}

// loop runs f, then whatever work comes, until it waits workerIdle for
// nothing or the server closes.
func (w *workers) loop(f func()) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		f()
		idle.Reset(workerIdle)
		select {
		case f = <-w.work:
		case <-idle.C:
			return
		case <-w.ctx.Done():
			return
		}
	}
}
