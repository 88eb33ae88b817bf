package logging

import (
	"log/slog"
	"sync"
)

// state collects one record's fields (in Handle) or one WithAttrs call's.
type state struct {
	details []byte       // members of the details object, without braces
	comma   bool         // details needs a comma before its next member
	groups  []string     // groups in scope (from WithGroup)
	opened  int          // how many of groups are open in details
	top     [nTop][]byte // JSON values of the top-level fields given here...
	has     [nTop]bool   // ...where has is true (top keeps its buffers)
	line    []byte       // the assembled line (Handle only)
}

var statePool = sync.Pool{New: func() any { return new(state) }}

// maxPooled keeps a rare huge record from pinning its buffers.
const maxPooled = 64 << 10

func (s *state) free() {
	if cap(s.details) > maxPooled || cap(s.line) > maxPooled {
		return
	}
	s.has = [nTop]bool{}
	s.groups = nil
	statePool.Put(s)
}

// addTop takes an attribute given at the top of a record or through With:
// a top-level field, the members of an inline (empty-key) group, or a
// details member placed inside the groups in scope.
func (s *state) addTop(a slog.Attr) {
	a.Value = a.Value.Resolve()
	if i := topField(a.Key); i >= 0 {
		if s.setTop(i, a.Value) {
			return
		}
	}
	if a.Key == "" && a.Value.Kind() == slog.KindGroup {
		for _, m := range a.Value.Group() {
			s.addTop(m)
		}
		return
	}
	mark, comma, opened := len(s.details), s.comma, s.opened
	for ; s.opened < len(s.groups); s.opened++ {
		s.member(s.groups[s.opened])
		s.details = append(s.details, '{')
		s.comma = false
	}
	if !s.attr(a) {
		s.details, s.comma, s.opened = s.details[:mark], comma, opened
	}
}

// setTop stores top-level field i; false when v cannot be one (a
// duration_ms that is not a number), so that it goes to details instead.
func (s *state) setTop(i int, v slog.Value) bool {
	buf := s.top[i][:0]
	if i == topDuration {
		var ok bool
		if buf, ok = appendMillis(buf, v); !ok {
			return false
		}
	} else {
		buf = appendText(buf, v)
	}
	s.top[i], s.has[i] = buf, true
	return true
}

// member starts a details member: comma if needed, then the key.
func (s *state) member(key string) {
	if s.comma {
		s.details = append(s.details, ',')
	}
	s.details = appendKey(s.details, key)
	s.comma = true
}

// attr writes a as a details member and reports whether it wrote anything:
// an empty attribute and a group with no members are left out, a group
// with an empty key is inlined, a sensitive key's value is redacted.
func (s *state) attr(a slog.Attr) bool {
	a.Value = a.Value.Resolve()
	if a.Value.Kind() == slog.KindGroup {
		members := a.Value.Group()
		if a.Key == "" {
			wrote := false
			for _, m := range members {
				wrote = s.attr(m) || wrote
			}
			return wrote
		}
		if len(members) == 0 {
			return false
		}
		if Sensitive(a.Key) {
			s.member(a.Key)
			s.details = appendString(s.details, redacted)
			return true
		}
		mark, comma := len(s.details), s.comma
		s.member(a.Key)
		s.details = append(s.details, '{')
		s.comma = false
		wrote := false
		for _, m := range members {
			wrote = s.attr(m) || wrote
		}
		if !wrote {
			s.details, s.comma = s.details[:mark], comma
			return false
		}
		s.details = append(s.details, '}')
		s.comma = true
		return true
	}
	if a.Key == "" && a.Value.Kind() == slog.KindAny && a.Value.Any() == nil {
		return false
	}
	s.member(a.Key)
	if Sensitive(a.Key) {
		s.details = appendString(s.details, redacted)
	} else {
		s.details = appendValue(s.details, a.Value)
	}
	return true
}
