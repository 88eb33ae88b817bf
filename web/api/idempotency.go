package api

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/usipipo/usipipo/web"
)

// idemStore keeps the responses of creating calls by (principal, method,
// path, Idempotency-Key) for a time window, so that a retried request gets
// the first response instead of creating twice. Bounded: the oldest entries
// go first. Node-local, in memory.
type idemStore struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu    sync.Mutex
	m     map[string]*idemEntry
	order []string // insertion order, for eviction
}

type idemEntry struct {
	reqHash  [32]byte
	done     bool
	at       time.Time
	status   int
	ctype    string
	location string
	body     []byte
}

// MaxIdempotencyKey is the longest Idempotency-Key accepted.
const MaxIdempotencyKey = 200

func newIdemStore(max int, window time.Duration, now func() time.Time) *idemStore {
	return &idemStore{max: max, window: window, now: now, m: map[string]*idemEntry{}}
}

// begin claims k for a request with body hash h: it returns the stored
// entry when one exists (done or still running), or nil after claiming.
func (s *idemStore) begin(k string, h [32]byte) *idemEntry {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.order) > 0 {
		old := s.m[s.order[0]]
		if old != nil && now.Sub(old.at) < s.window && len(s.m) < s.max {
			break
		}
		if old != nil {
			delete(s.m, s.order[0])
		}
		s.order = s.order[1:]
	}
	if e := s.m[k]; e != nil {
		cp := *e
		return &cp
	}
	s.m[k] = &idemEntry{reqHash: h, at: now}
	s.order = append(s.order, k)
	return nil
}

func (s *idemStore) finish(k string, e *idemEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.m[k]; cur != nil {
		e.reqHash, e.at, e.done = cur.reqHash, cur.at, true
		s.m[k] = e
	}
}

func (s *idemStore) abandon(k string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, k)
}

// idempotent replays the stored response of an earlier request with the
// same Idempotency-Key (and the same body); a different body with a used
// key is 422, a request whose twin is still running is 409. Failed calls
// created nothing and are not stored, so their retry runs again.
func (a *api) idempotent(c *fiber.Ctx) error {
	key := c.Get("Idempotency-Key")
	if key == "" {
		return c.Next()
	}
	if len(key) > MaxIdempotencyKey {
		return badRequest("Idempotency-Key is longer than 200 characters.")
	}
	k := principalOf(c).id + "\x00" + c.Method() + " " + c.Path() + "\x00" + key
	h := sha256.Sum256(c.Body())
	if e := a.idem.begin(k, h); e != nil {
		switch {
		case e.reqHash != h:
			return web.NewProblem(fiber.StatusUnprocessableEntity, problemType("idempotency-key-reused"),
				"Idempotency key reused", "This Idempotency-Key was used for a different request.")
		case !e.done:
			return web.NewProblem(fiber.StatusConflict, problemType("idempotency-in-progress"),
				"Request in progress", "A request with this Idempotency-Key is still being processed.")
		}
		a.m.idemReplayed.Inc()
		c.Set("Idempotent-Replayed", "true")
		if e.location != "" {
			c.Set(fiber.HeaderLocation, e.location)
		}
		c.Set(fiber.HeaderContentType, e.ctype)
		return c.Status(e.status).Send(e.body)
	}
	err := c.Next()
	st := c.Response().StatusCode()
	if err != nil || st >= 400 {
		a.idem.abandon(k)
		return err
	}
	a.idem.finish(k, &idemEntry{status: st, ctype: string(c.Response().Header.ContentType()),
		location: string(c.Response().Header.Peek(fiber.HeaderLocation)),
		body:     append([]byte(nil), c.Response().Body()...)})
	return nil
}
