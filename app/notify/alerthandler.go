package notify

import (
	"context"
	"log/slog"
	"strings"

	"github.com/usipipo/usipipo/app/logging"
)

// AlertHandler wraps a log handler so that every record at error level or
// above also goes to the admins as an alert (through Alert: never blocking,
// each distinct error at most once an hour). The notifier's own records are
// not forwarded, so a failing alert cannot feed itself. The alert carries
// the record's service, message and "error" attribute — which the log
// already redacts of secrets.
func (n *Notifier) AlertHandler(next slog.Handler) slog.Handler {
	return &alertHandler{next: next, n: n}
}

type alertHandler struct {
	next    slog.Handler
	n       *Notifier
	service string // from WithAttrs
}

func (h *alertHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *alertHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		service, detail := h.service, []string{r.Message}
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case logging.Service:
				service = a.Value.String()
			case "error", logging.Details:
				detail = append(detail, a.Value.String())
			}
			return true
		})
		if service != "notify" {
			h.n.Alert(service, strings.Join(detail, ": "))
		}
	}
	return h.next.Handle(ctx, r)
}

func (h *alertHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(as)
	for _, a := range as {
		if a.Key == logging.Service {
			c.service = a.Value.String()
		}
	}
	return &c
}

func (h *alertHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.next = h.next.WithGroup(name)
	return &c
}
