package panel

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"mime"
	"path"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/store/model"
	"github.com/usipipo/usipipo/web"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// renderer holds one template set per page: the layout plus that page.
type renderer struct {
	pages map[string]*template.Template
}

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04")
	},
	"bytes": humanBytes,
	"usd":   func(cents int64) string { return fmt.Sprintf("%d.%02d", cents/100, cents%100) },
	"join":  strings.Join,
	"list":  func(xs ...string) []string { return xs },
}

func newRenderer() (*renderer, error) {
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("panel layout: %w", err)
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	r := &renderer{pages: map[string]*template.Template{}}
	for _, n := range names {
		base := strings.TrimSuffix(path.Base(n), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(templateFS, n)
		if err != nil {
			return nil, fmt.Errorf("panel page %s: %w", base, err)
		}
		r.pages[base] = t
	}
	return r, nil
}

// pageData is what every page template gets.
type pageData struct {
	Title   string
	Nav     string
	Admin   string
	CSRF    string
	Warning string
	Flash   []string
	Data    any
}

type errorData struct{ Message string }

// page renders a full page (or, for an htmx request that asks for a
// fragment, the "content" block only) with the status already set on c.
func (p *panel) page(c *fiber.Ctx, name, title string, data any) error {
	t := p.render.pages[name]
	if t == nil {
		return fmt.Errorf("panel: no template %q", name)
	}
	d := pageData{Title: title, Nav: name, Warning: p.o.Warning, Data: data}
	if ss := p.current(c); ss != nil {
		d.Admin, d.CSRF = ss.admin, ss.csrf
		if len(ss.flash) > 0 && ss.admin != "" {
			d.Flash = ss.flash
			p.sess.with(ss.key, func(s *session) { s.flash = nil })
		}
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", d); err != nil {
		return fmt.Errorf("rendering %s: %w", name, err)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Send(buf.Bytes())
}

// flash queues messages for the next page of this session.
func (p *panel) flash(c *fiber.Ctx, msgs ...string) {
	if ss := p.current(c); ss != nil {
		p.sess.with(ss.key, func(s *session) { s.flash = append(s.flash, msgs...) })
	}
}

// fail renders a service error as a page: the caller's mistakes with their
// message and a 4xx status, anything else as a logged 500.
func (p *panel) fail(c *fiber.Ctx, err error) error {
	status, msg := fiber.StatusInternalServerError, "Something went wrong; the error was logged."
	switch {
	case errors.Is(err, model.ErrNotFound):
		status, msg = fiber.StatusNotFound, err.Error()
	case errors.Is(err, app.ErrUnauthorized):
		status, msg = fiber.StatusForbidden, "Not allowed."
	case errors.Is(err, model.ErrInvalid), errors.Is(err, model.ErrExists), errors.Is(err, model.ErrState),
		errors.Is(err, model.ErrQuota), errors.Is(err, model.ErrTrialUsed), errors.Is(err, model.ErrTrialDisabled),
		errors.Is(err, model.ErrBanned), errors.Is(err, model.ErrErased), errors.Is(err, model.ErrBalance),
		errors.Is(err, model.ErrForbidden), errors.Is(err, model.ErrProtocol), errors.Is(err, model.ErrConflict):
		status, msg = fiber.StatusUnprocessableEntity, err.Error()
	default:
		p.log.LogAttrs(c.UserContext(), slog.LevelError, "panel_error", slog.String("error", err.Error()),
			slog.String("path", strings.Clone(c.Path())), slog.String("request_id", web.RequestID(c)))
	}
	return p.page(c.Status(status), "error", "Error", errorData{Message: msg})
}

// serveAsset serves an embedded asset; names are flat, so no path escapes.
func serveAsset(c *fiber.Ctx) error {
	name := c.Params("name")
	if strings.ContainsAny(name, "/\\") || strings.HasPrefix(name, ".") {
		return fiber.ErrNotFound
	}
	b, err := assetFS.ReadFile("assets/" + name)
	if err != nil {
		return fiber.ErrNotFound
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "text/plain; charset=utf-8"
	}
	c.Set(fiber.HeaderContentType, ct)
	c.Set(fiber.HeaderCacheControl, "public, max-age=3600")
	return c.Send(b)
}

func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// partial renders one named block of a page's template set, for htmx.
func (p *panel) partial(c *fiber.Ctx, page, block string, data any) error {
	t := p.render.pages[page]
	if t == nil {
		return fmt.Errorf("panel: no template %q", page)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, block, data); err != nil {
		return fmt.Errorf("rendering %s/%s: %w", page, block, err)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Send(buf.Bytes())
}
