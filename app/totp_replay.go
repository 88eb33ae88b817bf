package app

import (
	"sync"
	"time"
)

// totpReuse is how long an accepted TOTP code stays spent: ValidTOTP
// accepts a code for one 30-second step either side of its own, so two
// minutes covers every moment it is still valid.
const totpReuse = 2 * time.Minute

// maxSpentTOTP bounds memory; only logins that passed the password check
// (and the adapters' back-off) add entries.
const maxSpentTOTP = 10000

// spentTOTP remembers the TOTP codes that let someone in, so a code seen
// over a shoulder or in a proxy log cannot be replayed while it is still
// valid. Memory only: a restart takes longer than a code stays valid in
// practice, and a node's logins are its own (node-local, like sessions).
type spentTOTP struct {
	mu   sync.Mutex
	seen map[string]time.Time // username NUL code → when it was accepted
}

func newSpentTOTP() *spentTOTP { return &spentTOTP{seen: map[string]time.Time{}} }

// claim marks code as spent for user at now and reports whether it was
// fresh. Check and mark are one step, so two concurrent logins with the
// same code cannot both win.
func (u *spentTOTP) claim(user, code string, now time.Time) bool {
	k := user + "\x00" + code
	u.mu.Lock()
	defer u.mu.Unlock()
	if at, ok := u.seen[k]; ok && now.Sub(at) < totpReuse && now.Sub(at) > -totpReuse {
		return false
	}
	if len(u.seen) >= maxSpentTOTP {
		for k, at := range u.seen {
			if now.Sub(at) >= totpReuse {
				delete(u.seen, k)
			}
		}
	}
	u.seen[k] = now
	return true
}

// freshTOTP claims the code that let username in, when the login has a
// TOTP factor; without one there is no code to spend.
func (s *Service) freshTOTP(username, code string) bool {
	adm, err := s.st.Admin(username)
	if err != nil {
		return false
	}
	if len(adm.TOTP) == 0 {
		return true
	}
	return s.spent.claim(username, code, s.now())
}
