package pay

import (
	"context"
	"sync"
)

// pipeline processes updates on a fixed set of lanes — one user's updates on
// one lane, in order — while the poller goes on fetching, and receipts what
// the lanes finished in batched writes (see updWriter).
type pipeline struct {
	in      *Intake
	lanes   []chan *Update
	results chan laneResult
	lanesWG sync.WaitGroup
	markWG  sync.WaitGroup

	mu       sync.Mutex
	inflight map[int64]bool // dispatched, not yet receipted or failed
}

type laneResult struct {
	u   *Update
	err error
}

const laneDepth = 64

func (in *Intake) startPipeline(ctx context.Context) *pipeline {
	p := &pipeline{in: in, lanes: make([]chan *Update, in.workers), results: make(chan laneResult, in.workers*laneDepth),
		inflight: map[int64]bool{}}
	for i := range p.lanes {
		ch := make(chan *Update, laneDepth)
		p.lanes[i] = ch
		p.lanesWG.Go(func() {
			for u := range ch {
				p.results <- laneResult{u, in.handle(ctx, u)}
			}
		})
	}
	p.markWG.Go(p.receipts)
	return p
}

// dispatch queues updates not already in flight; it blocks while their lane
// is full (back-pressure on the poller).
func (p *pipeline) dispatch(ups []*Update) {
	for _, u := range ups {
		p.mu.Lock()
		busy := p.inflight[u.ID]
		p.inflight[u.ID] = true
		p.mu.Unlock()
		if !busy {
			p.lanes[uint64(shardOf(u))%uint64(len(p.lanes))] <- u
		}
	}
}

// idle reports whether nothing is in flight.
func (p *pipeline) idle() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.inflight) == 0
}

// stop waits for the lanes to finish what they hold and for its receipts.
func (p *pipeline) stop() {
	for _, ch := range p.lanes {
		close(ch)
	}
	p.lanesWG.Wait()
	close(p.results)
	p.markWG.Wait()
}

// receipts hands the lanes' results to the writer, which writes them with
// the next persist or after receiptDelay; an update leaves the in-flight
// set once its receipt is durable, so a scan for pending updates never
// dispatches it again meanwhile.
func (p *pipeline) receipts() {
	in := p.in
	for r := range p.results {
		vals := map[string][]byte{}
		switch {
		case r.err == nil:
			vals[updKey(updPending, r.u.ID)] = nil
			vals[updKey(updDone, r.u.ID)] = []byte{1}
		case in.giveUp(r.u.ID):
			in.log.Error("update_dead_letter", "service", "pay", "action", "update", "details", r.err.Error())
			vals[updKey(updPending, r.u.ID)] = nil
			vals[updKey(updDone, r.u.ID)] = []byte{0}
			vals[updKey(updDead, r.u.ID)] = r.u.Raw
		default:
			in.log.Warn("update_retry", "service", "pay", "details", r.err.Error())
			p.done(r.u.ID) // still pending: the next scan dispatches it again
			continue
		}
		in.w.receipt(vals, func(err error) {
			if err != nil {
				// Still pending on disk: the next scan dispatches it again.
				in.log.Error("update_receipts", "service", "pay", "details", err.Error())
			}
			p.done(r.u.ID)
		})
	}
	in.w.flush()
}

func (p *pipeline) done(id int64) {
	p.mu.Lock()
	delete(p.inflight, id)
	p.mu.Unlock()
}
