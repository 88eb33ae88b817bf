package api

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/keyring"
	"github.com/usipipo/usipipo/web"
)

// idemStore keeps the responses of creating calls by (principal, method,
// path, Idempotency-Key) for a time window, so that a retried request gets
// the first response instead of creating twice. In memory it is bounded
// (the oldest entries go first); every finished response is also written,
// before it is sent, to the node-local telemetry bucket
// store.APIIdempotency, so a retry after a restart (within the window) is
// still answered from the record. Responses can hold secrets (a client
// configuration, an API token shown once), so records are sealed under a
// key derived from the API's signing key. Telemetry, not domain commands:
// the records are this node's answers, never audited or replicated.
type idemStore struct {
	max    int
	window time.Duration
	now    func() time.Time
	disk   *idemDisk // nil: memory only

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

func newIdemStore(max int, window time.Duration, now func() time.Time, disk *idemDisk) *idemStore {
	return &idemStore{max: max, window: window, now: now, disk: disk, m: map[string]*idemEntry{}}
}

// begin claims k for a request with body hash h: it returns the stored
// entry when one exists (done or still running), or nil after claiming.
func (s *idemStore) begin(k string, h [32]byte) (*idemEntry, error) {
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
	e := s.m[k]
	if e == nil && s.disk != nil {
		// Not in memory: evicted, or answered before a restart. A read
		// under the lock keeps the claim below atomic; it is one bbolt get.
		var err error
		if e, err = s.disk.get(k, now.Add(-s.window)); err != nil {
			return nil, err
		}
		if e != nil {
			s.m[k] = e
			s.order = append(s.order, k)
		}
	}
	if e != nil {
		cp := *e
		return &cp, nil
	}
	s.m[k] = &idemEntry{reqHash: h, at: now}
	s.order = append(s.order, k)
	return nil, nil
}

// finish records the response of the request that claimed k: durably
// first, then in memory.
func (s *idemStore) finish(k string, e *idemEntry) error {
	s.mu.Lock()
	cur := s.m[k]
	if cur != nil {
		e.reqHash, e.at, e.done = cur.reqHash, cur.at, true
	}
	s.mu.Unlock()
	if cur == nil {
		return nil
	}
	if s.disk != nil {
		if err := s.disk.put(k, e, s.now(), s.window); err != nil {
			s.abandon(k)
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m[k] == cur {
		s.m[k] = e
	}
	return nil
}

func (s *idemStore) abandon(k string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, k)
}

// idemDisk is idemStore's durable side.
type idemDisk struct {
	st     *store.Store
	sealer *keyring.Sealer

	mu        sync.Mutex
	lastPrune time.Time // guarded by mu
}

// idemRecord is what is sealed.
type idemRecord struct {
	ReqHash  []byte `json:"h"`
	At       int64  `json:"a"` // unix nanoseconds
	Status   int    `json:"s"`
	CType    string `json:"c"`
	Location string `json:"l,omitempty"`
	Body     []byte `json:"b"`
}

const recIdem = "api.idempotency"

// pruneEvery is how often finished writes also drop expired records.
const pruneEvery = time.Hour

func newIdemDisk(st *store.Store, k keyring.Key) *idemDisk {
	return &idemDisk{st: st, sealer: keyring.NewSealer(k)}
}

// diskKey hashes the claim key, which holds the client's Idempotency-Key.
func diskKey(k string) string {
	h := sha256.Sum256([]byte(k))
	return hex.EncodeToString(h[:])
}

// get returns the finished record of k written after since; nil when there
// is none (or it cannot be opened, as after a signing-key change).
func (d *idemDisk) get(k string, since time.Time) (*idemEntry, error) {
	dk := diskKey(k)
	v, err := d.st.GetTelemetry(store.APIIdempotency, dk)
	if err != nil {
		return nil, fmt.Errorf("reading an idempotency record: %w", err)
	}
	if len(v) < 8 || int64(binary.BigEndian.Uint64(v[:8])) < since.UnixNano() {
		return nil, nil
	}
	plain, err := d.sealer.Open(recIdem, dk, v[8:])
	if err != nil {
		return nil, nil
	}
	var r idemRecord
	if err := json.Unmarshal(plain, &r); err != nil || len(r.ReqHash) != 32 {
		return nil, nil
	}
	return &idemEntry{reqHash: [32]byte(r.ReqHash), done: true, at: time.Unix(0, r.At), status: r.Status,
		ctype: r.CType, location: r.Location, body: r.Body}, nil
}

// put writes e (its time in clear in front, for pruning without opening)
// and, once per pruneEvery, deletes records older than window.
func (d *idemDisk) put(k string, e *idemEntry, now time.Time, window time.Duration) error {
	dk := diskKey(k)
	plain, err := json.Marshal(idemRecord{ReqHash: e.reqHash[:], At: e.at.UnixNano(), Status: e.status, CType: e.ctype,
		Location: e.location, Body: e.body})
	if err != nil {
		return err
	}
	sealed, err := d.sealer.Seal(rand.Reader, recIdem, dk, plain)
	if err != nil {
		return fmt.Errorf("sealing an idempotency record: %w", err)
	}
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(sealed)), uint64(e.at.UnixNano()))
	if err := d.st.PutTelemetryBatch(store.APIIdempotency, map[string][]byte{dk: append(v, sealed...)}); err != nil {
		return fmt.Errorf("writing an idempotency record: %w", err)
	}
	return d.pruneDue(now, window)
}

func (d *idemDisk) pruneDue(now time.Time, window time.Duration) error {
	d.mu.Lock()
	due := now.Sub(d.lastPrune) >= pruneEvery
	if due {
		d.lastPrune = now
	}
	d.mu.Unlock()
	if !due {
		return nil
	}
	return d.prune(now.Add(-window))
}

// prune deletes the records written before cutoff.
func (d *idemDisk) prune(cutoff time.Time) error {
	old := map[string][]byte{}
	err := d.st.ScanTelemetry(store.APIIdempotency, "", func(k, v []byte) bool {
		if len(v) < 8 || int64(binary.BigEndian.Uint64(v[:8])) < cutoff.UnixNano() {
			old[string(k)] = nil
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("scanning idempotency records: %w", err)
	}
	if len(old) == 0 {
		return nil
	}
	if err := d.st.PutTelemetry(store.APIIdempotency, old); err != nil {
		return fmt.Errorf("pruning idempotency records: %w", err)
	}
	return nil
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
	e, err := a.idem.begin(k, h)
	if err != nil {
		return err
	}
	if e != nil {
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
	err = c.Next()
	st := c.Response().StatusCode()
	if err != nil || st >= 400 {
		a.idem.abandon(k)
		return err
	}
	// The call succeeded: its response goes out even when it cannot be
	// recorded, but a retry after a restart would then run it again.
	if ferr := a.idem.finish(k, &idemEntry{status: st, ctype: string(c.Response().Header.ContentType()),
		location: string(c.Response().Header.Peek(fiber.HeaderLocation)),
		body:     append([]byte(nil), c.Response().Body()...)}); ferr != nil {
		a.log.LogAttrs(c.UserContext(), slog.LevelError, "idempotency_record_failed", slog.String("action", c.Method()+" "+c.Path()),
			slog.String("details", ferr.Error()))
	}
	return nil
}
