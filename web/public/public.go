// Package public is the node's public HTTPS listener (--public-listen): the
// one place that must be reachable from the Internet. It serves
//
//   - GET /k/:token — dynamic Outline access keys (ssconf://), rate-limited
//     per client address;
//   - GET or POST /pay/qvapay — QvaPay's callback (verified by re-querying
//     QvaPay, in app/pay);
//   - POST /tg/webhook — Telegram's webhook, only when one is configured
//     (verified by Telegram's secret-token header, in app/pay);
//   - /api — the REST API, only when the seller opts in (--public-api);
//   - / — a plain landing page; everything else is a bare 404.
//
// The site doubles as the cover of the MTProto proxy (failed FakeTLS
// handshakes are spliced to it), so it looks like an ordinary small website:
// no server banner, the usual security headers, one neutral page per error
// status, and an unknown access-key token answered exactly like any other
// missing page.
//
// Certificates come from --tls-cert/--tls-key (re-read when the files
// change) or from ACME (TLS-ALPN-01, so no port 80 is needed); see tls.go.
package public

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/time/rate"

	"github.com/usipipo/usipipo/vpn/outline"
)

// Server limits.
const (
	ReadTimeout  = 15 * time.Second
	WriteTimeout = 30 * time.Second
	IdleTimeout  = 120 * time.Second
	BodyLimit    = 1 << 20

	// DefaultKeyRate and DefaultKeyBurst bound dynamic-key fetches per
	// client address: Outline clients fetch the key on each connect, a
	// token guesser wants millions.
	DefaultKeyRate  = rate.Limit(2)
	DefaultKeyBurst = 20
)

// Options configure a Server. Logger, Dynamic and either Cert or ACME are
// required.
type Options struct {
	Logger  *slog.Logger
	Dynamic outline.DynamicSource
	// Host is the site's name (--public-host): the landing page's title and
	// the only name ACME may get a certificate for.
	Host string
	// Cert is the certificate given as files; when zero, ACME is used.
	Cert CertFiles
	// ACME configures automatic certificates when Cert is zero.
	ACME ACME
	// QvaPay handles QvaPay's callback; nil answers 404.
	QvaPay fiber.Handler
	// Webhook handles Telegram's webhook; nil (no webhook secret
	// configured) answers 404.
	Webhook fiber.Handler
	// API mounts the REST API's /api routes on the app; nil: no /api.
	API func(app *fiber.App) error
	// KeyRate and KeyBurst: per-address limit of /k/ (defaults above).
	KeyRate  rate.Limit
	KeyBurst int
}

// Server is the public listener. Create it with New, then Serve on a
// listener from the registry; Shutdown stops it.
type Server struct {
	app  *fiber.App
	log  *slog.Logger
	tls  *tls.Config
	host string
	cert *certSeen

	mu      sync.Mutex
	closing bool
	lns     []net.Listener
}

// New builds the site and its TLS configuration.
func New(o Options) (*Server, error) {
	if o.Logger == nil || o.Dynamic == nil {
		return nil, errors.New("public: Logger and Dynamic are required")
	}
	if o.KeyRate == 0 {
		o.KeyRate = DefaultKeyRate
	}
	if o.KeyBurst == 0 {
		o.KeyBurst = DefaultKeyBurst
	}
	seen := &certSeen{}
	cfg, err := tlsConfig(o, seen)
	if err != nil {
		return nil, err
	}
	s := &Server{log: o.Logger, tls: cfg, host: o.Host, cert: seen}
	s.app = fiber.New(fiber.Config{
		DisableStartupMessage: true,
		ReadTimeout:           ReadTimeout,
		WriteTimeout:          WriteTimeout,
		IdleTimeout:           IdleTimeout,
		BodyLimit:             BodyLimit,
		ErrorHandler:          s.handleError,
	})
	s.app.Server().CloseOnShutdown = true
	s.app.Use(s.recoverMiddleware, headers)
	if err := s.routes(o); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) routes(o Options) error {
	s.app.Get("/", s.landing)
	s.app.Get("/robots.txt", robots)
	lim := newIPLimiter(o.KeyRate, o.KeyBurst, 10_000)
	s.app.Get("/k/:token", lim.middleware, dynamicKey(outline.DynamicKeyHandler(o.Dynamic)))
	if o.QvaPay != nil {
		s.app.Get("/pay/qvapay", o.QvaPay)
		s.app.Post("/pay/qvapay", o.QvaPay)
	}
	if o.Webhook != nil {
		s.app.Post("/tg/webhook", o.Webhook)
	}
	if o.API != nil {
		s.app.Use("/api", apiRequestID)
		if err := o.API(s.app); err != nil {
			return fmt.Errorf("mounting /api on the public listener: %w", err)
		}
	}
	api := o.API != nil
	s.app.Use(func(c *fiber.Ctx) error {
		if api && isAPI(c) {
			return fiber.ErrNotFound // the API's own 404, as problem JSON
		}
		return notFound(c)
	})
	return nil
}

// dynamicKey answers an unknown token with the site's one 404, so the
// answer cannot be told from any other missing page, and a failed lookup
// with the site's 503 page.
func dynamicKey(h fiber.Handler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if err := h(c); err != nil {
			return err
		}
		switch code := c.Response().StatusCode(); {
		case code == fiber.StatusNotFound:
			return notFound(c)
		case code >= 500:
			c.Response().ResetBody()
			return statusPage(c, code)
		}
		return nil
	}
}

// App is the fiber application (for tests and in-process requests).
func (s *Server) App() *fiber.App { return s.app }

// TLSConfig is the listener's TLS configuration.
func (s *Server) TLSConfig() *tls.Config { return s.tls }

// CertNotAfter is the expiry of the certificate last served (or loaded from
// the given files); zero before an ACME certificate was first served.
func (s *Server) CertNotAfter() time.Time {
	if u := s.cert.notAfter.Load(); u != 0 {
		return time.Unix(u, 0)
	}
	return time.Time{}
}

// Serve accepts TLS connections on ln until Shutdown; it returns nil when
// stopped by Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	ln = &onceCloseListener{Listener: ln}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.lns = append(s.lns, ln)
	s.mu.Unlock()
	err := s.app.Listener(tls.NewListener(ln, s.tls))
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing {
		return nil
	}
	return err
}

// Shutdown stops accepting, lets in-flight requests finish until ctx ends,
// and closes the listeners.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	lns := s.lns
	s.mu.Unlock()
	for _, ln := range lns {
		ln.Close()
	}
	if err := s.app.ShutdownWithContext(ctx); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("public listener shutdown: %w", err)
	}
	return nil
}

// onceCloseListener makes Close idempotent and quiet: Shutdown closes the
// listener and so does fasthttp, which gives up waiting for in-flight
// requests when its Close fails.
type onceCloseListener struct {
	net.Listener
	once sync.Once
}

func (l *onceCloseListener) Close() error {
	l.once.Do(func() { l.Listener.Close() })
	return nil
}
