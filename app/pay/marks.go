package pay

import (
	"sync"
	"time"

	"github.com/usipipo/usipipo/store"
)

// marks writes receipt markers (node-local telemetry) behind the caller:
// a marker only stops a receipt being sent twice when a payment event is
// processed again, so it need not hold up the grant's answer. Markers that
// arrive while a write runs go out together in the next one.
type marks struct {
	st *store.Store

	mu       sync.Mutex
	queued   map[string][]byte // not yet written
	flushing map[string][]byte // being written
	busy     bool
	idle     *sync.Cond // signalled when a flush ends
}

func newMarks(st *store.Store) *marks {
	m := &marks{st: st}
	m.idle = sync.NewCond(&m.mu)
	return m
}

// put queues key=val and starts a write if none runs.
func (m *marks) put(key string, val []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.queued == nil {
		m.queued = map[string][]byte{}
	}
	m.queued[key] = val
	if !m.busy {
		m.busy = true
		go m.flushLoop()
	}
}

// markDelay gathers markers into one write.
const markDelay = 100 * time.Millisecond

func (m *marks) flushLoop() {
	time.Sleep(markDelay)
	m.mu.Lock()
	for len(m.queued) > 0 {
		m.flushing, m.queued = m.queued, nil
		q := m.flushing
		m.mu.Unlock()
		err := m.st.PutTelemetry(store.Receipts, q)
		m.mu.Lock()
		if err != nil {
			// Keep them for the next write (or the next put).
			if m.queued == nil {
				m.queued = map[string][]byte{}
			}
			for k, v := range q {
				if _, newer := m.queued[k]; !newer {
					m.queued[k] = v
				}
			}
			m.flushing = nil
			break
		}
		m.flushing = nil
	}
	m.busy = false
	m.idle.Broadcast()
	m.mu.Unlock()
}

// get returns a marker, queued or written.
func (m *marks) get(key string) ([]byte, error) {
	m.mu.Lock()
	if v, ok := m.queued[key]; ok {
		m.mu.Unlock()
		return v, nil
	}
	if v, ok := m.flushing[key]; ok {
		m.mu.Unlock()
		return v, nil
	}
	m.mu.Unlock()
	return m.st.GetTelemetry(store.Receipts, key)
}

// flush writes what is queued and waits for it.
func (m *marks) flush() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for m.busy {
		m.idle.Wait()
	}
	if len(m.queued) == 0 {
		return nil
	}
	q := m.queued
	m.queued = nil
	m.mu.Unlock()
	err := m.st.PutTelemetry(store.Receipts, q)
	m.mu.Lock()
	return err
}
