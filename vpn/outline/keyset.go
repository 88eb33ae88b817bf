package outline

import (
	"crypto/cipher"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
)

// parallelSearchMin is the key count from which a first-contact search is
// spread over the cores: below it, goroutine start-up costs more than it saves.
const parallelSearchMin = 128

// keyEntry is an installed key: its state and its cipher.
type keyEntry struct {
	st *keyState
	c  *Cipher
}

// keySet is the installed keys, replaced as a whole by Apply and read
// without locks by the connection handlers.
type keySet struct {
	list []*keyEntry
	byID map[string]*keyEntry
	// maxSalt is the longest salt among the keys: how many bytes a
	// handshake must read before the search can try every key.
	maxSalt int
}

func newKeySet(list []*keyEntry) *keySet {
	s := &keySet{list: list, byID: make(map[string]*keyEntry, len(list))}
	for _, e := range list {
		s.byID[e.st.id] = e
		s.maxSalt = max(s.maxSalt, e.c.SaltSize())
	}
	return s
}

// match is the result of a successful trial: the key, its stream AEAD and
// the first chunk's payload length (TCP), or the opened packet (UDP).
type match struct {
	e     *keyEntry
	aead  cipher.AEAD
	n     int
	plain []byte
}

// tryFunc is one trial; a search makes one per worker (newTry(worker)),
// since trials keep scratch state.
type tryFunc func(*keyEntry) (match, bool)

// salted lazily holds a deriver per salt length: keys of different ciphers
// read different salt lengths from the same head. With a pool, derivers
// come from it and release gives them back, wiped.
type salted struct {
	d16, d32 *deriver
	pool     *sync.Pool // of *deriver; nil: allocate
}

func (s *salted) deriver(head []byte, ss int) *deriver {
	p := &s.d32
	if ss == minSaltSize {
		p = &s.d16
	}
	if *p == nil {
		if s.pool != nil {
			d := s.pool.Get().(*deriver)
			d.reset(head[:ss])
			*p = d
		} else {
			*p = newDeriver(head[:ss])
		}
	}
	return *p
}

func (s *salted) release() {
	for _, d := range []*deriver{s.d16, s.d32} {
		if d != nil && s.pool != nil {
			d.wipe()
			s.pool.Put(d)
		}
	}
	s.d16, s.d32 = nil, nil
}

// tcpTrials tries keys on the head of a stream: salt, then the sealed length.
func tcpTrials(head []byte) func(int) tryFunc {
	t, _ := pooledTCPTrials(head, nil)
	return t
}

// pooledTCPTrials is tcpTrials with derivers from pool; call release once
// the search has returned (the AEADs it found keep no reference to them).
func pooledTCPTrials(head []byte, pool *sync.Pool) (newTry func(int) tryFunc, release func()) {
	var (
		first salted    // worker 0's: most searches have no other
		more  []*salted // the parallel workers'
	)
	first.pool = pool
	newTry = func(w int) tryFunc {
		s := &first
		if w > 0 {
			s = &salted{pool: pool}
			more = append(more, s) // the search makes its workers' trials in one goroutine
		}
		return func(e *keyEntry) (match, bool) {
			ss := e.c.SaltSize()
			if len(head) < ss+lenChunkSize {
				return match{}, false
			}
			aead, n, ok := s.deriver(head, ss).tryLength(e.c, head[ss:])
			return match{e: e, aead: aead, n: n}, ok
		}
	}
	release = func() {
		first.release()
		for _, s := range more {
			s.release()
		}
	}
	return newTry, release
}

// udpTrials tries keys on a whole packet, opening it into a scratch buffer
// (worker 0 uses scratch, the others their own) so the packet stays intact.
func udpTrials(pkt, scratch []byte) func(int) tryFunc {
	return func(w int) tryFunc {
		var s salted
		dst := scratch
		if w > 0 {
			dst = make([]byte, len(pkt))
		}
		return func(e *keyEntry) (match, bool) {
			ss := e.c.SaltSize()
			if len(pkt) < ss+tagSize {
				return match{}, false
			}
			aead, err := e.c.m.newAEAD(s.deriver(pkt, ss).subkey(e.c.key))
			if err != nil {
				return match{}, false
			}
			p, err := aead.Open(dst[:0], zeroNonce[:], pkt[ss:], nil)
			return match{e: e, plain: p}, err == nil
		}
	}
}

// search finds the key a trial accepts: the client's last key first (one
// trial for a returning client), then all keys, in parallel when many.
func (s *keySet) search(last string, newTry func(worker int) tryFunc) (match, int, bool) {
	var skip *keyEntry
	try := newTry(0)
	if e := s.byID[last]; e != nil {
		if m, ok := try(e); ok {
			return m, 1, true
		}
		skip = e
	}
	workers := min(runtime.GOMAXPROCS(0), len(s.list)/parallelSearchMin)
	if workers <= 1 {
		trials := 0
		for _, e := range s.list {
			if e == skip {
				continue
			}
			trials++
			if m, ok := try(e); ok {
				return m, trials, true
			}
		}
		return match{}, trials, false
	}
	return s.parallel(workers, skip, try, newTry)
}

// parallel splits the keys over workers; worker 0 reuses the caller's trial.
func (s *keySet) parallel(workers int, skip *keyEntry, try0 tryFunc, newTry func(int) tryFunc) (match, int, bool) {
	var (
		found  atomic.Bool
		trials atomic.Int64
		wg     sync.WaitGroup
		res    match
	)
	per := (len(s.list) + workers - 1) / workers
	for w := range workers {
		part := s.list[w*per : min((w+1)*per, len(s.list))]
		try := try0
		if w > 0 {
			try = newTry(w)
		}
		wg.Go(func() {
			n := 0
			defer func() { trials.Add(int64(n)) }()
			for _, e := range part {
				if found.Load() {
					return
				}
				if e == skip {
					continue
				}
				n++
				if m, ok := try(e); ok {
					if !found.Swap(true) {
						res = m
					}
					return
				}
			}
		})
	}
	wg.Wait()
	return res, int(trials.Load()), found.Load()
}

// clientCache remembers the last key that matched each client address, in
// two generations so its size stays bounded without per-entry bookkeeping.
type clientCache struct {
	mu       sync.Mutex
	cur, old map[netip.Addr]string
	capacity int
}

func newClientCache(capacity int) *clientCache {
	return &clientCache{cur: map[netip.Addr]string{}, old: map[netip.Addr]string{}, capacity: capacity}
}

func (c *clientCache) get(a netip.Addr) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if id, ok := c.cur[a]; ok {
		return id
	}
	return c.old[a]
}

func (c *clientCache) put(a netip.Addr, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur[a] == id {
		return
	}
	if len(c.cur) >= c.capacity {
		c.old, c.cur = c.cur, make(map[netip.Addr]string, len(c.cur))
	}
	c.cur[a] = id
}
