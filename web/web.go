// Package web is usipipo's HTTP server: a fiber application with the
// middleware every route shares (request id, panic recovery, metrics,
// sampled JSON access log), one RFC 9457 error handler, and the
// operational endpoints /healthz, /readyz and /metrics. Later packages
// mount their routes on App().
package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// Server limits.
const (
	ReadTimeout  = 15 * time.Second  // whole request, headers and body
	WriteTimeout = 30 * time.Second  // whole response
	IdleTimeout  = 120 * time.Second // keep-alive connection between requests
	BodyLimit    = 1 << 20           // request body bytes

	// ReadyTimeout bounds each /readyz run.
	ReadyTimeout = 2 * time.Second
	// SlowRequest is the duration from which a request is always logged.
	SlowRequest = time.Second
)

// Options configures a Server.
type Options struct {
	// Logger receives the access log and errors. Required.
	Logger *slog.Logger
	// Metrics receives the HTTP metrics and is served on /metrics with the
	// process metrics. Required.
	Metrics *metrics.Set
	// Version is reported by /healthz.
	Version string
	// Ready holds the readiness checks run by /readyz, by name (for
	// example "store", "wireguard"). Each gets a context that ends after
	// ReadyTimeout.
	Ready map[string]func(ctx context.Context) error
	// Access log sampling, per second: the first AccessLogFirst requests
	// are logged, then one in AccessLogThereafter (none if it is 0).
	// Requests that end in a 5xx status or take SlowRequest or longer are
	// always logged. Both zero: every request is logged.
	AccessLogFirst, AccessLogThereafter int
}

type readyCheck struct {
	name string
	fn   func(ctx context.Context) error
}

// Server is the HTTP server. Create it with New, add routes to App, then
// Serve on listeners from the listener registry.
type Server struct {
	app     *fiber.App
	log     *slog.Logger
	set     *metrics.Set
	version string
	ready   []readyCheck
	sampler *sampler

	routeUseField []int // see isMiddleware

	// Settable by tests of this package.
	readyTimeout time.Duration
	slowRequest  time.Duration

	metrics *httpMetrics

	mu        sync.Mutex
	closing   bool
	listeners []*onceCloseListener
	conns     map[net.Conn]struct{}
}

// New returns a Server with the shared middleware and the operational
// routes installed.
func New(opts Options) (*Server, error) {
	if opts.Logger == nil {
		return nil, errors.New("web: Options.Logger is required")
	}
	if opts.Metrics == nil {
		return nil, errors.New("web: Options.Metrics is required")
	}
	if opts.AccessLogFirst < 0 || opts.AccessLogThereafter < 0 {
		return nil, fmt.Errorf("web: negative access log sampling %d/%d", opts.AccessLogFirst, opts.AccessLogThereafter)
	}
	s := &Server{
		log:           opts.Logger,
		set:           opts.Metrics,
		version:       opts.Version,
		sampler:       newSampler(opts.AccessLogFirst, opts.AccessLogThereafter),
		metrics:       newHTTPMetrics(opts.Metrics),
		routeUseField: routeUseField(),
		readyTimeout:  ReadyTimeout,
		slowRequest:   SlowRequest,
		conns:         make(map[net.Conn]struct{}),
	}
	for name, fn := range opts.Ready {
		if fn == nil {
			return nil, fmt.Errorf("web: readiness check %q is nil", name)
		}
		s.ready = append(s.ready, readyCheck{name, fn})
	}
	sort.Slice(s.ready, func(i, j int) bool { return s.ready[i].name < s.ready[j].name })

	s.app = fiber.New(fiber.Config{
		DisableStartupMessage: true,
		Prefork:               false,
		ReadTimeout:           ReadTimeout,
		WriteTimeout:          WriteTimeout,
		IdleTimeout:           IdleTimeout,
		BodyLimit:             BodyLimit,
		ErrorHandler:          s.handleError,
	})
	srv := s.app.Server()
	srv.ConnState = s.connState
	srv.CloseOnShutdown = true // "Connection: close" on responses while shutting down

	s.app.Use(s.requestIDMiddleware, s.recoverMiddleware, s.metricsMiddleware, s.accessLogMiddleware)
	s.app.Get("/healthz", s.healthz)
	s.app.Get("/readyz", s.readyz)
	s.app.Get("/metrics", s.metricsHandler)
	return s, nil
}

// App returns the fiber application, for mounting routes. Routes must be
// added before Serve.
func (s *Server) App() *fiber.App { return s.app }

// Serve accepts connections on ln until Shutdown. It returns nil when
// stopped by Shutdown (also when called after Shutdown, in which case it
// closes ln at once) and the accept error otherwise. It may be called for
// several listeners.
func (s *Server) Serve(ln net.Listener) error {
	ol := &onceCloseListener{Listener: ln}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ol.Close()
		return nil
	}
	s.listeners = append(s.listeners, ol)
	s.mu.Unlock()
	return s.app.Listener(ol)
}

// Shutdown stops accepting connections, closes idle ones, and waits for
// in-flight requests to finish. If ctx ends first, it cuts the remaining
// connections off and returns ctx's error; handlers still running then go
// on until they return, but their responses are lost.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	lns := s.listeners
	s.mu.Unlock()
	// Close the listeners here as well: a Serve that has not yet handed
	// its listener to fasthttp must not start accepting after this.
	for _, ln := range lns {
		ln.Close()
	}
	err := s.app.ShutdownWithContext(ctx)
	if err != nil && ctx.Err() != nil {
		s.mu.Lock()
		for c := range s.conns {
			abort(c)
		}
		s.mu.Unlock()
		return ctx.Err()
	}
	return err
}

// abort ends a connection that a handler may still be using. It must not
// Close it: fasthttp panics when setting a deadline on a closed
// connection after the handler returns. Shutting the socket down in both
// directions keeps the descriptor valid while the peer sees the end of
// the connection at once and the handler's writes fail; fasthttp closes it
// when the handler is done.
func abort(c net.Conn) {
	if hc, ok := c.(interface {
		CloseRead() error
		CloseWrite() error
	}); ok {
		hc.CloseRead()
		hc.CloseWrite()
		return
	}
	c.SetDeadline(time.Now())
}

// connState tracks open connections so that Shutdown can close them when
// its context ends.
func (s *Server) connState(c net.Conn, st fasthttp.ConnState) {
	switch st {
	case fasthttp.StateNew:
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
	case fasthttp.StateClosed, fasthttp.StateHijacked:
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}
}

// onceCloseListener makes Close idempotent: Shutdown closes the listener
// and so does fasthttp, which gives up waiting for in-flight requests if
// its Close fails.
type onceCloseListener struct {
	net.Listener
	once sync.Once
	err  error
}

func (l *onceCloseListener) Close() error {
	l.once.Do(func() {
		l.err = l.Listener.Close()
		if errors.Is(l.err, net.ErrClosed) {
			l.err = nil // closed by its owner already: just as good
		}
	})
	return l.err
}
