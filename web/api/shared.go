package api

import (
	"bytes"
	"errors"
	"sync"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/web/loginguard"
)

// Shared is the node-local state of the API that must be one per node, not
// one per listener: refresh-token families (a token replayed on either
// listener revokes its family on both), stored idempotent responses, the
// login back-off and begun TOTP enrolments. The first Mount given it builds it from its options
// and loads what the store holds; later Mounts must use the same store and
// signing key.
type Shared struct {
	mu      sync.Mutex
	built   bool
	signing []byte       // the seed it was built with, to refuse a mismatch
	st      *store.Store // the store it was built with
	refresh *refreshStore
	idem    *idemStore
	logins  *loginguard.Guard
	totp    *pendingTOTP // begun TOTP enrolments, by refresh family
}

// NewShared returns an empty Shared for Options.Shared.
func NewShared() *Shared { return &Shared{} }

// get builds the state on first use, or checks o matches it.
func (s *Shared) get(o *Options) (*Shared, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := o.Service.Store()
	if s.built {
		if s.st != st || !bytes.Equal(s.signing, o.SigningKey.Seed()) {
			return nil, errors.New("api: Options.Shared used with another store or signing key")
		}
		return s, nil
	}
	idemKey, err := idemKeyFrom(o.SigningKey)
	if err != nil {
		return nil, err
	}
	disk := newIdemDisk(st, idemKey)
	if err := disk.prune(o.Now().Add(-o.IdemWindow)); err != nil {
		return nil, err
	}
	refresh := newRefreshStore(o.Now, st)
	if err := refresh.load(); err != nil {
		return nil, err
	}
	logins := o.Logins
	if logins == nil {
		logins = loginguard.New(o.LoginFreeTries, o.Now)
	}
	s.refresh, s.idem, s.logins, s.totp = refresh, newIdemStore(o.IdemEntries, o.IdemWindow, o.Now, disk), logins, newPendingTOTP()
	s.signing, s.st, s.built = append([]byte(nil), o.SigningKey.Seed()...), st, true
	return s, nil
}
