package logging

import (
	"context"
	"io"
	"log/slog"
	"sync"
)

// The top-level fields an attribute can set, in the order they are written
// around action and details.
const (
	topService = iota
	topUserID
	topDuration
	topIP
	nTop
)

// topField tells which top-level field key sets, or -1.
func topField(key string) int {
	switch key {
	case Service:
		return topService
	case UserID:
		return topUserID
	case DurationMS:
		return topDuration
	case IP:
		return topIP
	}
	return -1
}

// output is the writer shared by a handler and all derived from it.
type output struct {
	mu sync.Mutex // serialises Write calls: one per record
	w  io.Writer
}

// handler is the slog.Handler behind New. It is immutable once made:
// WithAttrs and WithGroup return new handlers sharing only out.
type handler struct {
	out   *output
	level slog.Leveler

	top    [nTop][]byte // JSON values of top-level fields set so far; nil = not set
	pre    []byte       // details members from WithAttrs, groups in pre left open
	comma  bool         // pre needs a comma before its next member
	groups []string     // every group opened by WithGroup, outermost first
	opened int          // how many of groups are open in pre
}

func (h *handler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	s := state{
		details: append(make([]byte, 0, len(h.pre)+64*len(attrs)), h.pre...),
		comma:   h.comma,
		groups:  h.groups,
		opened:  h.opened,
	}
	for _, a := range attrs {
		s.addTop(a)
	}
	h2 := *h
	h2.pre, h2.comma, h2.opened = s.details, s.comma, s.opened
	for i, v := range s.top {
		if s.has[i] {
			h2.top[i] = v
		}
	}
	return &h2
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.groups = append(h.groups[:len(h.groups):len(h.groups)], name)
	return &h2
}

// Handle writes r as one line with one Write call.
func (h *handler) Handle(_ context.Context, r slog.Record) error {
	s := statePool.Get().(*state)
	defer s.free()
	s.details = append(s.details[:0], h.pre...)
	s.comma, s.groups, s.opened = h.comma, h.groups, h.opened
	r.Attrs(func(a slog.Attr) bool {
		s.addTop(a)
		return true
	})
	for range s.opened {
		s.details = append(s.details, '}')
	}

	b := append(s.line[:0], '{')
	if !r.Time.IsZero() {
		b = append(b, `"timestamp":`...)
		b = appendTimestamp(b, r.Time)
		b = append(b, ',')
	}
	b = append(b, `"level":`...)
	b = appendString(b, r.Level.String())
	b = s.appendTop(b, h, topService, `,"service":`)
	b = s.appendTop(b, h, topUserID, `,"user_id":`)
	b = append(b, `,"action":`...)
	b = appendString(b, r.Message)
	if len(s.details) > 0 {
		b = append(b, `,"details":{`...)
		b = append(b, s.details...)
		b = append(b, '}')
	}
	b = s.appendTop(b, h, topDuration, `,"duration_ms":`)
	b = s.appendTop(b, h, topIP, `,"ip":`)
	b = append(b, '}', '\n')
	s.line = b

	h.out.mu.Lock()
	_, err := h.out.w.Write(b)
	h.out.mu.Unlock()
	return err
}

// appendTop appends field i as "prefix value", the record's value first,
// else the handler's, else nothing.
func (s *state) appendTop(b []byte, h *handler, i int, prefix string) []byte {
	v := h.top[i]
	if s.has[i] {
		v = s.top[i]
	}
	if v == nil {
		return b
	}
	return append(append(b, prefix...), v...)
}
