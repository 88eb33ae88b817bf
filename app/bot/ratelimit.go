package bot

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiter is a token bucket per Telegram user, so one user flooding the bot
// cannot slow the others.
type limiter struct {
	rate  rate.Limit
	burst int
	now   func() time.Time

	mu    sync.Mutex
	users map[int64]*userLimit
}

type userLimit struct {
	l      *rate.Limiter
	warned time.Time // when the user was last told to slow down
	seen   time.Time
}

const limiterSweepAt = 50_000 // users held before idle ones are dropped

func newLimiter(r float64, burst int, now func() time.Time) *limiter {
	return &limiter{rate: rate.Limit(r), burst: burst, now: now, users: map[int64]*userLimit{}}
}

func (l *limiter) get(id int64) *userLimit {
	u := l.users[id]
	if u == nil {
		if len(l.users) >= limiterSweepAt {
			l.sweepLocked()
		}
		u = &userLimit{l: rate.NewLimiter(l.rate, l.burst)}
		l.users[id] = u
	}
	u.seen = l.now()
	return u
}

// allow takes one token of user id's bucket.
func (l *limiter) allow(id int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.get(id).l.AllowN(l.now(), 1)
}

// warn reports whether a limited user should be told (once a minute).
func (l *limiter) warn(id int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	u := l.get(id)
	now := l.now()
	if now.Sub(u.warned) < time.Minute {
		return false
	}
	u.warned = now
	return true
}

// sweepLocked drops users idle long enough for their bucket to be full.
func (l *limiter) sweepLocked() {
	idle := time.Duration(float64(l.burst)/float64(l.rate)*float64(time.Second)) + time.Minute
	now := l.now()
	for id, u := range l.users {
		if now.Sub(u.seen) > idle {
			delete(l.users, id)
		}
	}
}
