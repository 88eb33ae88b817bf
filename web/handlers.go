package web

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/VictoriaMetrics/metrics"
	"github.com/gofiber/fiber/v2"
)

// healthz answers 200 while the process serves HTTP at all.
func (s *Server) healthz(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(fiber.Map{"status": "ok", "version": s.version})
}

// readyz runs every readiness check concurrently, each with a context that
// ends after readyTimeout, and answers 200 if all pass, else 503 with each
// failing check's error text. A check that ignores its context is reported
// as timed out when the timeout passes; its goroutine ends when it returns.
func (s *Server) readyz(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), s.readyTimeout)
	defer cancel()
	type result struct {
		i   int
		err error
	}
	results := make(chan result, len(s.ready)) // buffered: late checks never block
	reqID := requestIDOf(c)                    // c is recycled once we return; late checks must not touch it
	for i, chk := range s.ready {
		go func() {
			defer func() {
				if v := recover(); v != nil {
					s.log.LogAttrs(ctx, slog.LevelError, "readiness check panicked",
						slog.String("check", chk.name), slog.String("panic", fmt.Sprint(v)),
						slog.String("request_id", reqID))
					results <- result{i, fmt.Errorf("check panicked")}
				}
			}()
			results <- result{i, chk.fn(ctx)}
		}()
	}
	errs := make([]error, len(s.ready))
	done := make([]bool, len(s.ready))
wait:
	for pending := len(s.ready); pending > 0; pending-- {
		select {
		case r := <-results:
			errs[r.i], done[r.i] = r.err, true
		case <-ctx.Done():
			break wait
		}
	}
	checks := make(map[string]string, len(s.ready))
	ready := true
	for i, chk := range s.ready {
		switch {
		case !done[i]:
			checks[chk.name] = fmt.Sprintf("timed out after %s", s.readyTimeout)
			ready = false
		case errs[i] != nil:
			checks[chk.name] = errs[i].Error()
			ready = false
		default:
			checks[chk.name] = "ok"
		}
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	if !ready {
		return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "not_ready", "checks": checks})
	}
	return c.JSON(fiber.Map{"status": "ready", "checks": checks})
}

// metricsHandler serves the Set and the process metrics in the Prometheus
// text format.
func (s *Server) metricsHandler(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, "text/plain; version=0.0.4; charset=utf-8")
	c.Set(fiber.HeaderCacheControl, "no-store")
	w := c.Response().BodyWriter()
	s.set.WritePrometheus(w)
	metrics.WriteProcessMetrics(w)
	return nil
}
