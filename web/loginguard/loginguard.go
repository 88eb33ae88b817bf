// Package loginguard slows password and second-factor guessing for the
// panel and the REST API alike: one Guard per node, shared by every
// surface that checks an admin's credentials, so a guesser cannot double
// its free tries by alternating between them.
//
// After Free failed attempts for a username from one address, each
// further attempt must wait 1 s, 2 s, 4 s … (at most MaxWait) after the
// previous failure. An address guessing many usernames, and a username
// guessed from many addresses, meet the same back-off after IPFreeFactor
// and UserFreeFactor times as many failures: a guesser spread over
// addresses is slowed without locking the real admin, at another address,
// out quickly. A success clears the pair's, the username's and the
// address's record. The state is node-local and in memory: a restart
// forgets it, which costs a guesser's one restart Free more tries.
package loginguard

import (
	"sync"
	"time"
)

// DefaultFree failed attempts per (username, address) are answered at once.
const DefaultFree = 5

// Limits of the back-off and of the memory it takes.
const (
	// MaxWait is the longest wait between two attempts.
	MaxWait = 15 * time.Minute
	// ForgetAfter is how long after its last failure a record starts over.
	ForgetAfter = time.Hour
	// maxEntries bounds the table; beyond it forgotten records are swept.
	maxEntries = 50000
)

// Free failures per address and per username, as multiples of the free
// failures per (username, address).
const (
	IPFreeFactor   = 4
	UserFreeFactor = 10
)

// Guard is the failed-login table. Its methods are safe for concurrent use.
type Guard struct {
	free int
	now  func() time.Time

	mu    sync.Mutex
	fails map[string]*failures // guarded by mu
}

type failures struct {
	n    int
	last time.Time
}

// New returns a Guard answering free failed attempts per (username,
// address) at once (DefaultFree when free <= 0), reading the time from now
// (time.Now when nil).
func New(free int, now func() time.Time) *Guard {
	if free <= 0 {
		free = DefaultFree
	}
	if now == nil {
		now = time.Now
	}
	return &Guard{free: free, now: now, fails: map[string]*failures{}}
}

// keys are the three records an attempt counts against. The NUL cannot be
// in an address, so no username makes two pairs collide.
func keys(ip, user string) [3]string {
	return [3]string{"pair:" + user + "\x00" + ip, "ip:" + ip, "user:" + user}
}

func (g *Guard) waitLocked(k string, free int, now time.Time) time.Duration {
	f := g.fails[k]
	if f == nil || f.n < free {
		return 0
	}
	wait := MaxWait
	if shift := f.n - free; shift < 20 {
		wait = min(time.Second<<shift, MaxWait)
	}
	return f.last.Add(wait).Sub(now)
}

// Check says how long the caller at ip must wait before trying user's
// credentials again (0: now). Callers refuse the attempt without checking
// anything when it is positive.
func (g *Guard) Check(ip, user string) time.Duration {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	k := keys(ip, user)
	return max(g.waitLocked(k[0], g.free, now), g.waitLocked(k[1], g.free*IPFreeFactor, now),
		g.waitLocked(k[2], g.free*UserFreeFactor, now), 0)
}

// Fail records a failed attempt at user's credentials from ip.
func (g *Guard) Fail(ip, user string) {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.fails) >= maxEntries {
		for k, f := range g.fails {
			if now.Sub(f.last) > ForgetAfter {
				delete(g.fails, k)
			}
		}
	}
	for _, k := range keys(ip, user) {
		f := g.fails[k]
		if f == nil || now.Sub(f.last) > ForgetAfter {
			f = &failures{}
			g.fails[k] = f
		}
		f.n++
		f.last = now
	}
}

// Succeed clears the records of a successful attempt: the pair's, the
// username's and the address's.
func (g *Guard) Succeed(ip, user string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, k := range keys(ip, user) {
		delete(g.fails, k)
	}
}
