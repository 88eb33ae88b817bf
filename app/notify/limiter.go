package notify

import (
	"context"
	"sync"
	"time"
)

// Limits are Telegram's sending limits as the notifier keeps them.
type Limits struct {
	// PerWindow messages at most in any Window (Telegram: about 30 a second
	// for a bot overall).
	PerWindow int
	Window    time.Duration
	// ChatGap is the least time between two messages to one chat (Telegram:
	// about one a second).
	ChatGap time.Duration
	// RetryUnit is what one unit of a 429's retry_after lasts: a second,
	// as Telegram means it. Tests shrink it.
	RetryUnit time.Duration
}

// DefaultLimits are Telegram's published limits.
func DefaultLimits() Limits {
	return Limits{PerWindow: 30, Window: time.Second, ChatGap: time.Second, RetryUnit: time.Second}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.PerWindow <= 0 {
		l.PerWindow = d.PerWindow
	}
	if l.Window <= 0 {
		l.Window = d.Window
	}
	if l.ChatGap <= 0 {
		l.ChatGap = d.ChatGap
	}
	if l.RetryUnit <= 0 {
		l.RetryUnit = d.RetryUnit
	}
	return l
}

// limiter admits a send only when it cannot break a limit as Telegram
// observes it. A send occupies its slot from the moment it starts until
// Window after its response arrived; a new send starts only while fewer
// than PerWindow slots are occupied. Telegram receives a request somewhere
// between its start and its response, so any Window of arrival times holds
// at most PerWindow requests, whatever the network delays — a rule on start
// times alone would not guarantee that. The same rule with one slot per chat
// and ChatGap keeps a chat's messages apart.
type limiter struct {
	lim Limits

	mu       sync.Mutex
	inflight int
	recent   []time.Time // when finished sends stop counting, ascending
	chats    map[int64]chatSlot
	paused   time.Time     // a 429 asked everyone to wait until then
	wake     chan struct{} // closed and replaced when a slot frees
}

type chatSlot struct {
	busy bool
	free time.Time // the next send to the chat may start then
}

// newLimiter starts paused for a window: the previous process (a restart,
// a restore swap) may have spent this window's budget just before it
// stopped, and Telegram counts both as one bot.
func newLimiter(l Limits) *limiter {
	l = l.withDefaults()
	return &limiter{lim: l, chats: map[int64]chatSlot{}, wake: make(chan struct{}),
		paused: time.Now().Add(max(l.Window, l.ChatGap))}
}

// acquire waits until a send to chat may start, takes its slots, and returns
// the function that gives them back once the response has arrived.
func (l *limiter) acquire(ctx context.Context, chat int64) (release func(), err error) {
	for {
		l.mu.Lock()
		wait, wake := l.waitLocked(chat, time.Now())
		if wait == 0 {
			l.inflight++
			l.chats[chat] = chatSlot{busy: true}
			l.mu.Unlock()
			return func() { l.release(chat) }, nil
		}
		l.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// waitLocked says how long a send to chat must wait (0: it may start) and
// the channel that signals a change earlier.
func (l *limiter) waitLocked(chat int64, now time.Time) (time.Duration, chan struct{}) {
	i := 0
	for i < len(l.recent) && !l.recent[i].After(now) {
		i++
	}
	l.recent = l.recent[i:]
	var wait time.Duration
	if now.Before(l.paused) {
		wait = l.paused.Sub(now)
	}
	if l.inflight+len(l.recent) >= l.lim.PerWindow {
		if len(l.recent) > 0 {
			wait = max(wait, l.recent[0].Sub(now))
		} else {
			wait = max(wait, time.Hour) // only in-flight sends: their release wakes us
		}
	}
	if c := l.chats[chat]; c.busy {
		wait = max(wait, time.Hour)
	} else if now.Before(c.free) {
		wait = max(wait, c.free.Sub(now))
	}
	return wait, l.wake
}

func (l *limiter) release(chat int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	l.inflight--
	l.recent = append(l.recent, now.Add(l.lim.Window))
	l.chats[chat] = chatSlot{free: now.Add(l.lim.ChatGap)}
	if len(l.chats) > 4096 {
		for id, c := range l.chats {
			if !c.busy && !now.Before(c.free) {
				delete(l.chats, id)
			}
		}
	}
	close(l.wake)
	l.wake = make(chan struct{})
}

// pause holds every send for a 429's retry_after.
func (l *limiter) pause(retryAfter int) {
	d := time.Duration(max(retryAfter, 1)) * l.lim.RetryUnit
	l.mu.Lock()
	defer l.mu.Unlock()
	if until := time.Now().Add(d); until.After(l.paused) {
		l.paused = until
	}
}
