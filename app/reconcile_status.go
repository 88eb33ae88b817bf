package app

import (
	"sync"

	"github.com/VictoriaMetrics/metrics"
)

// planeStatus is what the reconcile loop last saw of the data planes, for
// /metrics. Scrapes read it; they never scan the store.
//
//	usipipo_plane_up{plane}           1 while the plane took its last desired set and gave its counters
//	usipipo_plane_connections{plane}  open connections or sessions at the last usage collection
//	usipipo_active_keys{plane}        credentials installed by the last push
//	usipipo_active_users{plane}       distinct users with a credential installed on the plane
//	usipipo_node_active_users         distinct users with a credential installed on any plane
type planeStatus struct {
	mu     sync.Mutex
	planes map[string]*planeState
	users  int
}

type planeState struct {
	applied            bool // the last Apply succeeded; false until the first
	readFailed         bool // the last Counters failed
	keys, users, conns int
}

func newPlaneStatus(set *metrics.Set, names []string) *planeStatus {
	s := &planeStatus{planes: map[string]*planeState{}}
	for _, name := range names {
		st := &planeState{}
		s.planes[name] = st
		label := `{plane="` + name + `"}`
		set.NewGauge("usipipo_plane_up"+label, func() float64 {
			return s.read(func() int {
				if st.applied && !st.readFailed {
					return 1
				}
				return 0
			})
		})
		set.NewGauge("usipipo_plane_connections"+label, func() float64 { return s.read(func() int { return st.conns }) })
		set.NewGauge("usipipo_active_keys"+label, func() float64 { return s.read(func() int { return st.keys }) })
		set.NewGauge("usipipo_active_users"+label, func() float64 { return s.read(func() int { return st.users }) })
	}
	set.NewGauge("usipipo_node_active_users", func() float64 { return s.read(func() int { return s.users }) })
	return s
}

func (s *planeStatus) read(f func() int) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return float64(f())
}

// pushed records a plane's push: failed, or installed keys for users.
func (s *planeStatus) pushed(name string, ok bool, keys, users int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.planes[name]
	st.applied = ok
	if ok {
		st.keys, st.users = keys, users
	}
}

// collected records a plane's counter read: failed, or its open connections.
func (s *planeStatus) collected(name string, ok bool, conns int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.planes[name]
	st.readFailed = !ok
	if ok {
		st.conns = conns
	}
}

// activeUsers records the distinct users over every plane.
func (s *planeStatus) activeUsers(n int) {
	s.mu.Lock()
	s.users = n
	s.mu.Unlock()
}
