package node

import (
	"context"
	"log/slog"
	"sync/atomic"

	"github.com/usipipo/usipipo/app/notify"
)

// alertTap passes every record on and, once the notifier runs, also hands
// error records to it as admin alerts. The store and the data planes are
// built before the notifier and keep their loggers, so the notifier is
// bound late through sink rather than by wrapping a logger afterwards.
type alertTap struct {
	next  slog.Handler
	sink  *atomic.Pointer[notify.Notifier]
	attrs []slog.Attr // what WithAttrs added: the alert names its service
}

func newAlertTap(next slog.Handler, sink *atomic.Pointer[notify.Notifier]) *alertTap {
	return &alertTap{next: next, sink: sink}
}

func (h *alertTap) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *alertTap) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		if nt := h.sink.Load(); nt != nil {
			// Alert never blocks, and the discarding handler writes nothing:
			// the record is logged once, below.
			nt.AlertHandler(slog.DiscardHandler).WithAttrs(h.attrs).Handle(ctx, r)
		}
	}
	return h.next.Handle(ctx, r)
}

func (h *alertTap) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(as)
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &c
}

func (h *alertTap) WithGroup(name string) slog.Handler {
	c := *h
	c.next = h.next.WithGroup(name)
	return &c
}
