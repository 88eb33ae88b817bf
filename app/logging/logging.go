package logging

import (
	"io"
	"log/slog"
	"time"
)

// New returns a logger writing JSON lines to w, for records at or above
// level (slog.LevelInfo when nil), each with the given service.
func New(w io.Writer, service string, level slog.Leveler) *slog.Logger {
	if level == nil {
		level = slog.LevelInfo
	}
	h := &handler{out: &output{w: w}, level: level}
	h.top[topService] = appendString(nil, service)
	return slog.New(h)
}

// ForService returns a logger for another service that writes through the
// same handler as l: same writer, level, attributes and groups.
func ForService(l *slog.Logger, service string) *slog.Logger {
	h, ok := l.Handler().(*handler)
	if !ok {
		return l.With(Service, service)
	}
	h2 := *h
	h2.top[topService] = appendString(nil, service)
	return slog.New(&h2)
}

// Duration returns the duration_ms attribute for d, in milliseconds.
func Duration(d time.Duration) slog.Attr {
	return slog.Float64(DurationMS, float64(d)/float64(time.Millisecond))
}
