package notify

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// pageSize is how many users a broadcast reads, filters and sends to before
// it moves its cursor.
const pageSize = 200

// runBroadcasts sends queued broadcasts one at a time until ctx ends; a
// broadcast a previous run left running is resumed first.
func (n *Notifier) runBroadcasts(ctx context.Context) {
	if n.tg == nil {
		return // e-mail only: broadcasts wait for a bot token
	}
	for ctx.Err() == nil {
		j, err := n.nextJob()
		if err != nil {
			n.log.Error("broadcast_queue_failed", "error", err.Error())
		}
		if j != nil && err == nil {
			if err := n.runJob(ctx, j); err != nil && ctx.Err() == nil {
				n.log.Error("broadcast_failed", "details", j.ID, "error", err.Error())
				sleep(ctx, n.o.Interval) // a store error: do not spin
			}
			continue
		}
		select {
		case <-ctx.Done():
		case <-n.kick:
		case <-time.After(n.o.Interval):
		}
	}
}

// nextJob is the oldest broadcast still queued or running.
func (n *Notifier) nextJob() (*job, error) {
	var out *job
	var bad error
	err := n.st.ScanTelemetry(store.Checkpoints, jobPrefix, func(_, v []byte) bool {
		var j job
		if err := json.Unmarshal(v, &j); err != nil {
			bad = err
			return true
		}
		if j.State == StateQueued || j.State == StateRunning {
			out = &j
			return false
		}
		return true
	})
	if err == nil && out == nil {
		err = bad
	}
	return out, err
}

// runJob sends one broadcast page by page until it is done, cancelled, or
// ctx ends (then it stays running, to be resumed).
func (n *Notifier) runJob(ctx context.Context, j *job) error {
	jctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n.jobMu.Lock()
	cur, err := n.getJob(j.ID)
	if err == nil && cur.State != StateQueued && cur.State != StateRunning {
		n.jobMu.Unlock()
		return nil
	}
	if err == nil {
		cur.State = StateRunning
		err = n.putJob(cur)
	}
	if err != nil {
		n.jobMu.Unlock()
		return err
	}
	n.running[j.ID] = cancel
	n.jobMu.Unlock()
	defer func() {
		n.jobMu.Lock()
		delete(n.running, j.ID)
		n.jobMu.Unlock()
	}()
	n.log.Info("broadcast_started", "actor", cur.Actor, "details", cur.ID)
	pick, err := n.picker(cur.Segment)
	if err != nil {
		return err
	}
	for jctx.Err() == nil {
		users, next, err := n.st.Users(store.Page{After: cur.Cursor, Limit: pageSize})
		if err != nil {
			return err
		}
		if !n.sendPage(jctx, cur, pick.filter(users)) {
			if !sleep(jctx, 5*n.o.Limits.RetryUnit) { // a transient failure: the page again
				break
			}
			continue
		}
		done, err := n.advance(cur, next)
		if err != nil || done {
			return err
		}
	}
	return nil
}

// advance moves a broadcast's cursor past a finished page (and marks it
// done after the last), unless it was cancelled meanwhile. It reports
// whether the broadcast is over.
func (n *Notifier) advance(cur *job, next string) (bool, error) {
	n.jobMu.Lock()
	defer n.jobMu.Unlock()
	stored, err := n.getJob(cur.ID)
	if err != nil {
		return false, err
	}
	if stored.State == StateCancelled {
		return true, nil
	}
	cur.Cursor = next
	if next == "" {
		cur.State, cur.Finished = StateDone, n.now().UTC()
		n.log.Info("broadcast_done", "actor", cur.Actor, "details", cur.ID)
	}
	return next == "", n.putJob(cur)
}

// sendPage sends to each recipient that has no receipt, Workers at a time
// (the limiter paces them). It reports whether every recipient now has a
// receipt.
func (n *Notifier) sendPage(ctx context.Context, j *job, to []model.User) bool {
	var wg sync.WaitGroup
	var mu sync.Mutex
	complete := true
	work := make(chan *model.User)
	for range min(n.o.Workers, len(to)) {
		wg.Go(func() {
			for u := range work {
				ok := n.sendOne(ctx, j, u)
				if !ok {
					mu.Lock()
					complete = false
					mu.Unlock()
				}
			}
		})
	}
	for i := range to {
		if ctx.Err() != nil {
			break
		}
		work <- &to[i]
	}
	close(work)
	wg.Wait()
	return complete && ctx.Err() == nil // a cancelled page is never complete
}

func (n *Notifier) sendOne(ctx context.Context, j *job, u *model.User) bool {
	out, err := n.rc.once(recipientKey(j.ID, u.ID), n.now, func(claim func() error) outcome {
		return n.sendTelegram(ctx, u.TelegramID, claim, func(rctx context.Context) error {
			return n.tg.sendMessage(rctx, u.TelegramID, j.Text)
		})
	})
	if err == nil {
		err = n.settle(out, u.ID, "telegram")
	}
	if err != nil && ctx.Err() == nil {
		n.log.Warn("broadcast_send_failed", "user_id", u.ID, "details", err.Error())
	}
	return err == nil
}

// picker decides who of a page receives a broadcast.
type picker struct {
	n          *Notifier
	seg        Segment
	banned     map[string]bool // banned or erased (the store's index)
	botBlocked map[string]bool
	active     map[string]bool // users with an active credential, when seg asks
}

func (n *Notifier) picker(seg Segment) (*picker, error) {
	p := &picker{n: n, seg: seg}
	var err error
	if p.banned, err = n.st.BlockedUsers(); err != nil {
		return nil, err
	}
	if p.botBlocked, err = n.rc.allBlocked(); err != nil {
		return nil, err
	}
	if seg.ActiveKey {
		p.active = map[string]bool{}
		for _, proxies := range []bool{false, true} {
			err := n.st.EachActiveVersion(proxies, func(userID, _ string, _ uint64) error { p.active[userID] = true; return nil })
			if err != nil {
				return nil, err
			}
		}
	}
	return p, nil
}

func (p *picker) filter(us []model.User) []model.User {
	out := us[:0:0]
	now := p.n.now()
	for _, u := range us {
		if u.TelegramID == 0 || u.Banned || u.Erased || p.banned[u.ID] || p.botBlocked[u.ID] {
			continue
		}
		if p.seg.Language != "" && p.n.cat.lang(u.Language) != p.seg.Language {
			continue
		}
		if p.seg.ActiveKey && !p.active[u.ID] {
			continue
		}
		if p.seg.PlanID != "" {
			sub, _, err := p.n.st.CurrentPlan(u.ID, now)
			if err != nil || sub.PlanID != p.seg.PlanID {
				continue
			}
		}
		out = append(out, u)
	}
	return out
}
