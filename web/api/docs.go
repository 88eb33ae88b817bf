package api

import (
	_ "embed"

	"github.com/gofiber/fiber/v2"
)

//go:generate python3 assets/genspec.py

// The OpenAPI 3 document and the docs page that renders it are embedded;
// the page loads nothing from elsewhere.
var (
	//go:embed assets/openapi.json
	specJSON []byte
	//go:embed assets/docs.html
	docsHTML []byte
	//go:embed assets/docs.js
	docsJS []byte
)

// Spec returns the embedded OpenAPI document.
func Spec() []byte { return specJSON }

func serveSpec(c *fiber.Ctx) error {
	c.Set(fiber.HeaderAccessControlAllowOrigin, "*")
	return sendTagged(c, specJSON, fiber.MIMEApplicationJSONCharsetUTF8)
}

func serveDocs(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentSecurityPolicy, "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'")
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	return sendTagged(c, docsHTML, fiber.MIMETextHTMLCharsetUTF8)
}

func serveDocsJS(c *fiber.Ctx) error {
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	return sendTagged(c, docsJS, "text/javascript; charset=utf-8")
}
