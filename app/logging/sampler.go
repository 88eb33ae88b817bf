package logging

import (
	"sync/atomic"
	"time"
)

// Sampler thins a stream of records, such as access logs under load: in
// each second of the clock it lets through the first `first` records and
// then one in `thereafter`; records for errors always pass and are not
// counted. It is safe for concurrent use and costs a clock read and an
// atomic add or two per call.
type Sampler struct {
	first, thereafter uint64
	now               func() time.Time

	// state packs the current second (high 32 bits) and the number of
	// records counted in it (low 32 bits), so that both change together.
	state   atomic.Uint64
	dropped atomic.Uint64
}

const countMask = 1<<32 - 1

// NewSampler returns a Sampler passing the first `first` records of every
// second and then one in `thereafter` (none when thereafter <= 0). now is
// the clock; nil means time.Now.
func NewSampler(first, thereafter int, now func() time.Time) *Sampler {
	if now == nil {
		now = time.Now
	}
	return &Sampler{first: uint64(max(first, 0)), thereafter: uint64(max(thereafter, 0)), now: now}
}

// Allow reports whether to log a record; isError records always pass.
func (s *Sampler) Allow(isError bool) bool {
	if isError {
		return true
	}
	sec := uint64(s.now().Unix()) & countMask
	var n uint64
	for {
		old := s.state.Load()
		// A caller whose clock read lags another's counts in the newer
		// second rather than turning the window back (compared modulo
		// 2^32 seconds).
		if ahead := int32(uint32(sec) - uint32(old>>32)); ahead <= 0 && old != 0 {
			n = s.state.Add(1) & countMask
			break
		}
		if s.state.CompareAndSwap(old, sec<<32|1) {
			n = 1
			break
		}
	}
	if n <= s.first || s.thereafter > 0 && (n-s.first)%s.thereafter == 0 {
		return true
	}
	s.dropped.Add(1)
	return false
}

// Dropped returns how many records Allow has turned away so far.
func (s *Sampler) Dropped() uint64 { return s.dropped.Load() }
