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

// codeReuse is how long an accepted TOTP code stays spent: the service
// accepts a code for one 30-second step either side of its own.
const codeReuse = 2 * time.Minute

// usedCodes remembers the TOTP codes that let someone in, so a code seen
// over a shoulder or in a proxy log cannot be replayed while it is valid.
type usedCodes struct {
	now func() time.Time

	mu   sync.Mutex
	seen map[string]time.Time // username NUL code → when it was used
}

func newUsedCodes(now func() time.Time) *usedCodes {
	return &usedCodes{now: now, seen: map[string]time.Time{}}
}

// spent reports whether code already let user in within codeReuse.
func (u *usedCodes) spent(user, code string) bool {
	if code == "" {
		return false
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	at, ok := u.seen[user+"\x00"+code]
	return ok && u.now().Sub(at) < codeReuse
}

// use marks code as spent for user, forgetting codes past codeReuse.
func (u *usedCodes) use(user, code string) {
	if code == "" {
		return
	}
	now := u.now()
	u.mu.Lock()
	defer u.mu.Unlock()
	for k, at := range u.seen {
		if now.Sub(at) >= codeReuse {
			delete(u.seen, k)
		}
	}
	u.seen[user+"\x00"+code] = now
}
