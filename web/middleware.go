package web

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/gofiber/fiber/v2"
)

// RequestIDLocal is the fiber.Ctx Locals key holding the request id.
const RequestIDLocal = "request_id"

// UnmatchedRoute is the route label of requests that no route matched.
const UnmatchedRoute = "unmatched"

// maxRequestIDLen bounds an accepted incoming X-Request-ID.
const maxRequestIDLen = 64

// RequestID returns the id of the request c, as set by the request id
// middleware.
func RequestID(c *fiber.Ctx) string { return requestIDOf(c) }

func requestIDOf(c *fiber.Ctx) string {
	id, _ := c.Locals(RequestIDLocal).(string)
	return id
}

// validRequestID reports whether an incoming X-Request-ID is acceptable:
// 1 to 64 characters of [A-Za-z0-9._-].
func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// newRequestID returns 16 random hex digits. math/rand/v2's generator is
// ChaCha8 seeded by the runtime from the OS, so ids are unpredictable
// enough for correlation, and cheaper than crypto/rand on the hot path.
func newRequestID() string {
	const digits = "0123456789abcdef"
	v := rand.Uint64()
	var b [16]byte
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = digits[v&15]
		v >>= 4
	}
	return string(b[:])
}

// requestIDMiddleware takes a valid incoming X-Request-ID or makes one,
// and sets it on the response and in c.Locals(RequestIDLocal).
func (s *Server) requestIDMiddleware(c *fiber.Ctx) error {
	id := c.Get(fiber.HeaderXRequestID)
	if validRequestID(id) {
		id = strings.Clone(id) // c.Get aliases a buffer fasthttp reuses
	} else {
		id = newRequestID()
	}
	c.Locals(RequestIDLocal, id)
	c.Set(fiber.HeaderXRequestID, id)
	return c.Next()
}

// panicError is what a recovered panic becomes for the error handler: a
// 500 whose details were already logged (with the stack) by the recovery.
type panicError struct{}

func (panicError) Error() string { return "recovered panic" }

// recoverMiddleware turns a panic below it into a logged 500 problem. The
// panic value goes to the log only, never to the client.
func (s *Server) recoverMiddleware(c *fiber.Ctx) (err error) {
	own := c.Route()
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		s.log.LogAttrs(c.UserContext(), slog.LevelError, "http_panic",
			slog.String("request_id", requestIDOf(c)),
			slog.String("method", methodLabel(c.Method())),
			slog.String("route", s.routeLabel(c, own)),
			slog.String("path", strings.Clone(c.Path())),
			slog.String("panic", fmt.Sprint(v)),
			slog.String("stack", string(debug.Stack())))
		if herr := c.App().ErrorHandler(c, panicError{}); herr != nil {
			_ = c.SendStatus(fiber.StatusInternalServerError)
		}
		err = nil
	}()
	return c.Next()
}

// methodLabel maps the request method to a constant string: fiber only
// routes the standard methods, and the constant is safe to keep (c.Method
// aliases a reused buffer).
func methodLabel(m string) string {
	switch m {
	case fiber.MethodGet:
		return fiber.MethodGet
	case fiber.MethodHead:
		return fiber.MethodHead
	case fiber.MethodPost:
		return fiber.MethodPost
	case fiber.MethodPut:
		return fiber.MethodPut
	case fiber.MethodPatch:
		return fiber.MethodPatch
	case fiber.MethodDelete:
		return fiber.MethodDelete
	case fiber.MethodConnect:
		return fiber.MethodConnect
	case fiber.MethodOptions:
		return fiber.MethodOptions
	case fiber.MethodTrace:
		return fiber.MethodTrace
	}
	return "OTHER"
}

// routeLabel is the pattern of the route that handled c ("/users/:id"),
// never the raw path, so that label values are bounded by the routes
// registered. A request that only middleware (app.Use) handled, because no
// route matched (404, 405) or a prefix middleware answered it, is
// "unmatched". own is the route of the calling middleware, as c.Route()
// returned on entry.
func (s *Server) routeLabel(c *fiber.Ctx, own *fiber.Route) string {
	r := c.Route()
	if r == nil || r == own || s.isMiddleware(r) {
		return UnmatchedRoute
	}
	return r.Path
}

// isMiddleware reports whether r was registered with Use. fiber keeps that
// in an unexported field (and overwrites Method with the request method),
// so it is read by reflection; New finds the field once. Should a fiber
// release drop it, routeLabel still labels requests that no route after
// this package's middleware matched as unmatched.
func (s *Server) isMiddleware(r *fiber.Route) bool {
	if s.routeUseField == nil {
		return false
	}
	return reflect.ValueOf(r).Elem().FieldByIndex(s.routeUseField).Bool()
}

// routeUseField locates fiber.Route's "use" flag, or is nil.
func routeUseField() []int {
	f, ok := reflect.TypeFor[fiber.Route]().FieldByName("use")
	if !ok || f.Type.Kind() != reflect.Bool {
		return nil
	}
	return f.Index
}

type counterKey struct {
	method, route string
	status        int
}

type histogramKey struct {
	method, route string
}

// httpMetrics caches the metrics of each label set, so that the hot path
// neither formats names nor takes the Set's lock.
type httpMetrics struct {
	set        *metrics.Set
	mu         sync.RWMutex
	counters   map[counterKey]*metrics.Counter
	histograms map[histogramKey]*metrics.PrometheusHistogram
}

func newHTTPMetrics(set *metrics.Set) *httpMetrics {
	return &httpMetrics{
		set:        set,
		counters:   make(map[counterKey]*metrics.Counter),
		histograms: make(map[histogramKey]*metrics.PrometheusHistogram),
	}
}

func (m *httpMetrics) counter(method, route string, status int) *metrics.Counter {
	k := counterKey{method, route, status}
	m.mu.RLock()
	c := m.counters[k]
	m.mu.RUnlock()
	if c != nil {
		return c
	}
	c = m.set.GetOrCreateCounter(`usipipo_http_requests_total{method="` + method +
		`",route="` + escapeLabel(route) + `",status="` + strconv.Itoa(status) + `"}`)
	m.mu.Lock()
	m.counters[k] = c
	m.mu.Unlock()
	return c
}

func (m *httpMetrics) histogram(method, route string) *metrics.PrometheusHistogram {
	k := histogramKey{method, route}
	m.mu.RLock()
	h := m.histograms[k]
	m.mu.RUnlock()
	if h != nil {
		return h
	}
	h = m.set.GetOrCreatePrometheusHistogram(`usipipo_http_request_duration_seconds{method="` + method +
		`",route="` + escapeLabel(route) + `"}`)
	m.mu.Lock()
	m.histograms[k] = h
	m.mu.Unlock()
	return h
}

// escapeLabel escapes a Prometheus label value.
func escapeLabel(v string) string {
	if !strings.ContainsAny(v, "\\\"\n") {
		return v
	}
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v)
}

// metricsMiddleware counts every request by method, route and status and
// observes its duration by method and route. A request that panics
// counts as a 500, which is what the recovery above renders.
func (s *Server) metricsMiddleware(c *fiber.Ctx) error {
	start := time.Now()
	own := c.Route()
	returned := false
	defer func() {
		status := c.Response().StatusCode()
		if !returned {
			status = fiber.StatusInternalServerError
		}
		method, route := methodLabel(c.Method()), s.routeLabel(c, own)
		s.metrics.counter(method, route, status).Inc()
		s.metrics.histogram(method, route).UpdateDuration(start)
	}()
	err := c.Next()
	returned = true
	return err
}

// accessLogMiddleware renders an error returned by the handlers at once,
// through the error handler, so that it and the metrics see the final
// status, and writes the sampled "http_request" log line.
func (s *Server) accessLogMiddleware(c *fiber.Ctx) error {
	start := time.Now()
	own := c.Route()
	returned := false
	defer func() {
		status := c.Response().StatusCode()
		if !returned {
			status = fiber.StatusInternalServerError
		}
		s.logRequest(c, own, start, status)
	}()
	if err := c.Next(); err != nil {
		if herr := c.App().ErrorHandler(c, err); herr != nil {
			_ = c.SendStatus(fiber.StatusInternalServerError)
		}
	}
	returned = true
	return nil
}

func (s *Server) logRequest(c *fiber.Ctx, own *fiber.Route, start time.Time, status int) {
	d := time.Since(start)
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	ctx := c.UserContext()
	if !s.log.Enabled(ctx, level) {
		return
	}
	if status < 500 && d < s.slowRequest && !s.sampler.allow(start.Unix()) {
		return
	}
	s.log.LogAttrs(ctx, level, "http_request",
		slog.String("method", methodLabel(c.Method())),
		slog.String("route", s.routeLabel(c, own)),
		slog.String("path", strings.Clone(c.Path())),
		slog.Int("status", status),
		slog.Float64("duration_ms", float64(d)/float64(time.Millisecond)),
		slog.String("ip", c.IP()),
		slog.String("request_id", requestIDOf(c)))
}
