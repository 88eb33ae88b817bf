package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// Segment selects a broadcast's recipients. Its fields narrow the set and
// combine (all must match); the zero Segment is every user. Banned and
// erased users, users without a Telegram chat and users who blocked the bot
// are never included.
type Segment struct {
	Language  string `json:"language,omitempty"`   // "es" or "en"
	ActiveKey bool   `json:"active_key,omitempty"` // holds an active key or MTProto secret
	PlanID    string `json:"plan_id,omitempty"`    // their current plan is this one
}

// Broadcast states.
const (
	StateQueued    = "queued"
	StateRunning   = "running"
	StateDone      = "done"
	StateCancelled = "cancelled"
)

// BroadcastStatus is a broadcast and its progress. The counts are read from
// the per-recipient receipts, so they are exact after a restart too.
type BroadcastStatus struct {
	ID       string    `json:"id"`
	Actor    string    `json:"actor"`
	Segment  Segment   `json:"segment"`
	Text     string    `json:"text"`
	State    string    `json:"state"`
	Created  time.Time `json:"created"`
	Finished time.Time `json:"finished,omitzero"`
	Sent     int       `json:"sent"`
	Blocked  int       `json:"blocked"`   // recipients who blocked the bot (now marked)
	Failed   int       `json:"failed"`    // refused for good (e.g. chat not found)
	InFlight int       `json:"in_flight"` // pending receipts: being sent, or cut by a crash (counted once, never resent)
}

// job is a broadcast's record in Checkpoints telemetry: bcast/job/<id>.
// Cursor is the user-list cursor after the last page whose recipients all
// have receipts; a restart resumes there, and receipts skip the recipients
// of the page in progress that were already handled.
type job struct {
	ID       string    `json:"id"`
	Actor    string    `json:"actor"`
	Segment  Segment   `json:"segment"`
	Text     string    `json:"text"`
	State    string    `json:"state"`
	Cursor   string    `json:"cursor,omitempty"`
	Created  time.Time `json:"created"`
	Finished time.Time `json:"finished,omitzero"`
	// Counts holds the final counts once the receipts were pruned.
	Counts *counts `json:"counts,omitempty"`
}

type counts struct {
	Sent, Blocked, Failed, InFlight int
}

const (
	jobPrefix     = "bcast/job/"
	bcReceipt     = "bcast/" // bcast/<id>/<user>
	maxTextLength = 4096     // Telegram's limit for one message
)

func recipientKey(id, userID string) string { return bcReceipt + id + "/" + userID }

// Broadcast queues text for every user in seg and returns the broadcast's
// id at once; Run sends it, one broadcast at a time in the order queued,
// within Telegram's limits, each recipient exactly once even across
// restarts. actor (e.g. "bot:123", "api:key", "admin:name") is recorded and
// logged. Invalid input is model.ErrInvalid, wrapped; without a bot token
// it is ErrNoTelegram.
func (n *Notifier) Broadcast(ctx context.Context, actor string, seg Segment, text string) (string, error) {
	if n.tg == nil {
		return "", ErrNoTelegram
	}
	text = strings.TrimSpace(text)
	switch {
	case actor == "":
		return "", fmt.Errorf("broadcast needs an actor: %w", model.ErrInvalid)
	case text == "" || !utf8.ValidString(text) || utf8.RuneCountInString(text) > maxTextLength:
		return "", fmt.Errorf("broadcast text must be 1 to %d characters of UTF-8: %w", maxTextLength, model.ErrInvalid)
	case seg.Language != "" && n.cat.lang(seg.Language) != seg.Language:
		return "", fmt.Errorf("segment language %q: %w", seg.Language, model.ErrInvalid)
	}
	if seg.PlanID != "" {
		if _, err := n.st.Plan(seg.PlanID); err != nil {
			return "", fmt.Errorf("segment plan: %w", err)
		}
	}
	now := n.now().UTC()
	id, err := model.NewID(now, n.o.Rand)
	if err != nil {
		return "", err
	}
	j := &job{ID: id, Actor: actor, Segment: seg, Text: text, State: StateQueued, Created: now}
	n.jobMu.Lock()
	err = n.putJob(j)
	n.jobMu.Unlock()
	if err != nil {
		return "", err
	}
	n.log.Info("broadcast_queued", "actor", actor, "details", id)
	n.poke()
	return id, nil
}

// Status returns a broadcast's state and counts; model.ErrNotFound when
// there is no such broadcast.
func (n *Notifier) Status(id string) (*BroadcastStatus, error) {
	j, err := n.getJob(id)
	if err != nil {
		return nil, err
	}
	s := &BroadcastStatus{ID: j.ID, Actor: j.Actor, Segment: j.Segment, Text: j.Text, State: j.State,
		Created: j.Created, Finished: j.Finished}
	if c := j.Counts; c != nil {
		s.Sent, s.Blocked, s.Failed, s.InFlight = c.Sent, c.Blocked, c.Failed, c.InFlight
		return s, nil
	}
	err = n.st.ScanTelemetry(store.Receipts, recipientKey(id, ""), func(_, v []byte) bool {
		if len(v) > 0 {
			switch v[0] {
			case rcSent:
				s.Sent++
			case rcBlocked:
				s.Blocked++
			case rcFailed:
				s.Failed++
			case rcPending:
				s.InFlight++
			}
		}
		return true
	})
	return s, err
}

// Cancel stops a queued or running broadcast: no new message starts; those
// already in flight complete. A finished broadcast is ErrBroadcastOver.
func (n *Notifier) Cancel(ctx context.Context, actor, id string) error {
	n.jobMu.Lock()
	defer n.jobMu.Unlock()
	j, err := n.getJob(id)
	if err != nil {
		return err
	}
	if j.State == StateDone || j.State == StateCancelled {
		return fmt.Errorf("broadcast %s is %s: %w", id, j.State, ErrBroadcastOver)
	}
	j.State, j.Finished = StateCancelled, n.now().UTC()
	if err := n.putJob(j); err != nil {
		return err
	}
	if stop := n.running[id]; stop != nil {
		stop()
	}
	n.log.Info("broadcast_cancelled", "actor", actor, "details", id)
	return nil
}

// Broadcasts lists broadcasts, newest first, at most limit of them.
func (n *Notifier) Broadcasts(limit int) ([]BroadcastStatus, error) {
	var ids []string
	err := n.st.ScanTelemetry(store.Checkpoints, jobPrefix, func(k, _ []byte) bool {
		ids = append(ids, string(k[len(jobPrefix):]))
		return true
	})
	if err != nil {
		return nil, err
	}
	var out []BroadcastStatus
	for i := len(ids) - 1; i >= 0 && len(out) < limit; i-- {
		s, err := n.Status(ids[i])
		if err != nil {
			return nil, err
		}
		out = append(out, *s)
	}
	return out, nil
}

func (n *Notifier) poke() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

func (n *Notifier) getJob(id string) (*job, error) {
	if !model.ValidID(id) {
		return nil, fmt.Errorf("broadcast id %q: %w", id, model.ErrInvalid)
	}
	b, err := n.st.GetTelemetry(store.Checkpoints, jobPrefix+id)
	if err != nil {
		return nil, err
	}
	if b == nil {
		return nil, fmt.Errorf("broadcast %s: %w", id, model.ErrNotFound)
	}
	var j job
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("broadcast %s: %w", id, err)
	}
	return &j, nil
}

// putJob writes a broadcast record; the caller holds jobMu.
func (n *Notifier) putJob(j *job) error {
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	if err := n.st.PutTelemetry(store.Checkpoints, map[string][]byte{jobPrefix + j.ID: b}); err != nil {
		return fmt.Errorf("saving broadcast: %w", err)
	}
	return nil
}
