package panel

import (
	"sync"
	"time"
)

// loginGuard slows password and code guessing: after free failed logins
// from an address or for a username, each further attempt must wait 1 s,
// 2 s, 4 s … (at most 15 minutes) after the previous failure. A success
// clears both records. Node-local, in memory, like the API's.
type loginGuard struct {
	free int
	now  func() time.Time

	mu    sync.Mutex
	fails map[string]*failures
}

type failures struct {
	n    int
	last time.Time
}

const (
	maxLoginWait    = 15 * time.Minute
	loginForgetTime = time.Hour
	maxLoginEntries = 50000
	// DefaultFreeTries failed logins are answered at once.
	DefaultFreeTries = 5
)

func newLoginGuard(free int, now func() time.Time) *loginGuard {
	return &loginGuard{free: free, now: now, fails: map[string]*failures{}}
}

func (g *loginGuard) waitLocked(k string, now time.Time) time.Duration {
	f := g.fails[k]
	if f == nil || f.n < g.free {
		return 0
	}
	wait := maxLoginWait
	if shift := f.n - g.free; shift < 20 {
		wait = min(time.Second<<shift, maxLoginWait)
	}
	return f.last.Add(wait).Sub(now)
}

// check says how long the caller must wait before trying again (0: now).
func (g *loginGuard) check(ip, user string) time.Duration {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	return max(g.waitLocked("ip:"+ip, now), g.waitLocked("user:"+user, now), 0)
}

func (g *loginGuard) fail(ip, user string) {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.fails) >= maxLoginEntries {
		for k, f := range g.fails {
			if now.Sub(f.last) > loginForgetTime {
				delete(g.fails, k)
			}
		}
	}
	for _, k := range []string{"ip:" + ip, "user:" + user} {
		f := g.fails[k]
		if f == nil || now.Sub(f.last) > loginForgetTime {
			f = &failures{}
			g.fails[k] = f
		}
		f.n++
		f.last = now
	}
}

func (g *loginGuard) succeed(ip, user string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.fails, "ip:"+ip)
	delete(g.fails, "user:"+user)
}
