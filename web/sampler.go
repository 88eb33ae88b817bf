package web

import "sync/atomic"

// sampler decides which ordinary requests get an access log line: the
// first `first` of each second, then one in `thereafter` (none if
// thereafter is 0). It is lock-free: one atomic word holds the current
// second (high 32 bits) and the number of requests seen in it (low 32
// bits), so the decision is exact under concurrency.
type sampler struct {
	first, thereafter uint64
	all               bool // no sampling: log everything
	state             atomic.Uint64
}

func newSampler(first, thereafter int) *sampler {
	if first <= 0 && thereafter <= 0 {
		return &sampler{all: true}
	}
	return &sampler{first: uint64(max(first, 0)), thereafter: uint64(max(thereafter, 0))}
}

// allow counts one request at unix second sec and reports whether to log it.
func (s *sampler) allow(sec int64) bool {
	if s.all {
		return true
	}
	epoch := uint64(uint32(sec)) << 32
	var n uint64
	for {
		old := s.state.Load()
		next := epoch | 1
		if old&^0xffffffff == epoch {
			n = old & 0xffffffff
			if n == 0xffffffff {
				next = old // saturate; 4e9 requests in a second is not going to happen
			} else {
				next = old + 1
			}
		}
		if s.state.CompareAndSwap(old, next) {
			n = next & 0xffffffff
			break
		}
	}
	if n <= s.first {
		return true
	}
	if s.thereafter == 0 {
		return false
	}
	return (n-s.first)%s.thereafter == 0
}
