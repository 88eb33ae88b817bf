package public

import (
	"errors"
	"html/template"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/time/rate"

	"github.com/usipipo/usipipo/web"
)

// headers are what an ordinary, carefully run small site sends. There is no
// Server header at all (fiber sends none unless configured).
func headers(c *fiber.Ctx) error {
	c.Set(fiber.HeaderStrictTransportSecurity, "max-age=31536000")
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderXFrameOptions, "DENY")
	c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
	c.Set(fiber.HeaderContentSecurityPolicy, "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	return c.Next()
}

var landingPage = template.Must(template.New("landing").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.}}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em;color:#222}h1{font-weight:600}</style>
</head>
<body>
<h1>{{.}}</h1>
<p>Welcome. This site is being set up; please check back later.</p>
</body>
</html>
`))

func (s *Server) landing(c *fiber.Ctx) error {
	title := s.host
	if title == "" {
		title = "Welcome"
	}
	var b strings.Builder
	if err := landingPage.Execute(&b, title); err != nil {
		return err
	}
	c.Type("html", "utf-8")
	return c.SendString(b.String())
}

func robots(c *fiber.Ctx) error {
	return c.SendString("User-agent: *\nDisallow:\n")
}

// statusPage answers with the site's one page for an error status.
func statusPage(c *fiber.Ctx, code int) error {
	text := http.StatusText(code)
	c.Status(code)
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Type("html", "utf-8")
	return c.SendString("<!doctype html>\n<html><head><title>" + strconv.Itoa(code) + " " + text +
		"</title></head>\n<body><h1>" + strconv.Itoa(code) + " " + text + "</h1></body></html>\n")
}

func notFound(c *fiber.Ctx) error {
	c.Response().ResetBody()
	return statusPage(c, fiber.StatusNotFound)
}

// handleError renders errors: problem JSON under /api (the REST API's
// contract), the neutral status page everywhere else. A method the route
// does not take is a plain 404, as if nothing were there.
func (s *Server) handleError(c *fiber.Ctx, err error) error {
	code := fiber.StatusInternalServerError
	var (
		p  *web.Problem
		fe *fiber.Error
	)
	switch {
	case errors.As(err, &p):
		code = p.Status
	case errors.As(err, &fe):
		code = fe.Code
	}
	if code < 400 || code > 599 {
		code = fiber.StatusInternalServerError
	}
	if code >= 500 {
		s.log.LogAttrs(c.UserContext(), slog.LevelError, "public_http_error", slog.String("method", c.Method()),
			slog.String("path", logPath(c)), slog.Int("status", code), slog.String("error", err.Error()))
	}
	if isAPI(c) {
		return problem(c, code, p, fe)
	}
	if code == fiber.StatusMethodNotAllowed {
		code = fiber.StatusNotFound
		c.Response().Header.Del(fiber.HeaderAllow)
	}
	return statusPage(c, code)
}

// logPath is the request path for the log, without a dynamic key's token:
// tokens are secrets.
func logPath(c *fiber.Ctx) string {
	if strings.HasPrefix(c.Path(), "/k/") {
		return "/k/[token]"
	}
	return strings.Clone(c.Path())
}

func isAPI(c *fiber.Ctx) bool {
	p := c.Path()
	return p == "/api" || strings.HasPrefix(p, "/api/")
}

// problem renders an RFC 9457 problem as web's error handler does.
func problem(c *fiber.Ctx, code int, p *web.Problem, fe *fiber.Error) error {
	b := fiber.Map{"type": "about:blank", "title": http.StatusText(code), "status": code, "detail": "",
		"instance": c.Path(), "request_id": web.RequestID(c)}
	switch {
	case p != nil && p.Status == code:
		if p.Type != "" {
			b["type"] = p.Type
		}
		if p.Title != "" {
			b["title"] = p.Title
		}
		b["detail"] = p.Detail
	case fe != nil && fe.Code == code:
		b["detail"] = fe.Message
	default:
		b["detail"] = "The server encountered an internal error. Quote the request id when reporting it."
	}
	c.Status(code)
	if err := c.JSON(b); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, web.ProblemContentType)
	return nil
}

// apiRequestID gives /api requests the request id the REST API quotes in
// its problems.
func apiRequestID(c *fiber.Ctx) error {
	c.Locals(web.RequestIDLocal, strconv.FormatUint(rand.Uint64(), 16))
	return c.Next()
}

func (s *Server) recoverMiddleware(c *fiber.Ctx) (err error) {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("public_http_panic", "path", logPath(c))
			err = fiber.ErrInternalServerError
		}
	}()
	return c.Next()
}

// ipLimiter is a token bucket per client address, at most max addresses:
// when full, buckets that have refilled (idle addresses) are dropped, and
// if none has, all are (a flood from many addresses then costs only
// memory that is bounded).
type ipLimiter struct {
	r     rate.Limit
	burst int
	max   int

	mu sync.Mutex
	m  map[string]*rate.Limiter
}

func newIPLimiter(r rate.Limit, burst, max int) *ipLimiter {
	return &ipLimiter{r: r, burst: burst, max: max, m: make(map[string]*rate.Limiter)}
}

func (l *ipLimiter) allow(ip string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.m[ip]
	if lim == nil {
		if len(l.m) >= l.max {
			l.pruneLocked()
		}
		lim = rate.NewLimiter(l.r, l.burst)
		l.m[strings.Clone(ip)] = lim
	}
	return lim.Allow()
}

func (l *ipLimiter) pruneLocked() {
	for ip, lim := range l.m {
		if lim.Tokens() >= float64(l.burst) {
			delete(l.m, ip)
		}
	}
	if len(l.m) >= l.max {
		clear(l.m)
	}
}

func (l *ipLimiter) middleware(c *fiber.Ctx) error {
	if !l.allow(c.IP()) {
		return statusPage(c, fiber.StatusTooManyRequests)
	}
	return c.Next()
}
