package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/cespare/xxhash/v2"
	"github.com/gofiber/fiber/v2"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
	"github.com/usipipo/usipipo/web"
)

// ProblemBase prefixes every problem type URI. The types are stable: a
// client may switch on them.
const ProblemBase = "https://usipipo.dev/problems/"

func problemType(slug string) string { return ProblemBase + slug }

// domainProblems maps store/model's sentinel errors to statuses and types.
var domainProblems = []struct {
	err    error
	status int
	slug   string
	title  string
}{
	{model.ErrNotFound, fiber.StatusNotFound, "not-found", "Not found"},
	{model.ErrExists, fiber.StatusConflict, "exists", "Already exists"},
	{model.ErrInvalid, fiber.StatusUnprocessableEntity, "invalid", "Invalid input"},
	{model.ErrQuota, fiber.StatusConflict, "quota", "Key quota reached"},
	{model.ErrTrialUsed, fiber.StatusConflict, "trial-used", "Free trial already used"},
	{model.ErrTrialDisabled, fiber.StatusForbidden, "trial-disabled", "Free trial not available"},
	{model.ErrBanned, fiber.StatusForbidden, "banned", "User is banned"},
	{model.ErrErased, fiber.StatusGone, "erased", "User was erased"},
	{model.ErrConflict, fiber.StatusConflict, "conflict", "Record changed concurrently"},
	{model.ErrState, fiber.StatusConflict, "state", "Not allowed in the current state"},
	{model.ErrBalance, fiber.StatusConflict, "insufficient-credits", "Insufficient credits"},
	{model.ErrForbidden, fiber.StatusForbidden, "forbidden", "Not allowed for this role"},
	{model.ErrProtocol, fiber.StatusForbidden, "protocol-not-in-plan", "Protocol not included in the plan"},
	{app.ErrUnauthorized, fiber.StatusUnauthorized, "unauthorized", "Unauthorized"},
}

// problemFor turns a handler's error into a problem; errors that are no
// domain error stay as they are (web renders them as a 500).
func problemFor(err error) error {
	if err == nil {
		return nil
	}
	var p *web.Problem
	if errors.As(err, &p) {
		return err
	}
	for _, d := range domainProblems {
		if errors.Is(err, d.err) {
			// Domain error text is meant for users (store/model/errors.go).
			return web.NewProblem(d.status, problemType(d.slug), d.title, err.Error())
		}
	}
	return err
}

func badRequest(detail string) error {
	return web.NewProblem(fiber.StatusBadRequest, problemType("malformed-request"), "Malformed request", detail)
}

// decodeBody decodes a JSON request body into v: exactly one object, no
// unknown fields, and a JSON media type when one is given.
func decodeBody(c *fiber.Ctx, v any) error {
	if ct := c.Get(fiber.HeaderContentType); ct != "" {
		mt, _, _ := strings.Cut(ct, ";")
		if mt = strings.TrimSpace(strings.ToLower(mt)); mt != fiber.MIMEApplicationJSON {
			return web.NewProblem(fiber.StatusUnsupportedMediaType, problemType("unsupported-media-type"),
				"Unsupported media type", "Send the body as application/json.")
		}
	}
	return decodeJSON(c.Body(), v)
}

func decodeJSON(body []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return badRequest("The body is not a valid JSON object for this call: " + jsonErrText(err))
	}
	if d.More() {
		return badRequest("The body holds more than one JSON value.")
	}
	return nil
}

// jsonErrText keeps the decoder's message short and free of the input.
func jsonErrText(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return "syntax error at offset " + strconv.FormatInt(se.Offset, 10)
	case errors.As(err, &te):
		return "field " + strconv.Quote(te.Field) + " has the wrong type"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return truncate(err.Error()[len("json: "):], 80)
	}
	return "unexpected end or shape"
}

// page reads ?after= and ?limit=.
func page(c *fiber.Ctx) (store.Page, error) {
	p := store.Page{After: c.Query("after")}
	if l := c.Query("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > store.MaxLimit {
			return p, badRequest("limit must be an integer from 1 to " + strconv.Itoa(store.MaxLimit) + ".")
		}
		p.Limit = n
	}
	return p, nil
}

// list is a page of a list.
type list[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next"`
}

func listOf[T any](items []T, next string) list[T] {
	if items == nil {
		items = []T{}
	}
	return list[T]{Items: items, Next: next}
}

// sendRead renders v as JSON with a strong ETag (the xxhash of the body)
// and answers 304 when If-None-Match names it.
func sendRead(c *fiber.Ctx, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return sendTagged(c, body, fiber.MIMEApplicationJSON)
}

func sendTagged(c *fiber.Ctx, body []byte, ctype string) error {
	var buf [18]byte
	tag := strconv.AppendUint(append(buf[:0], '"'), xxhash.Sum64(body), 36)
	tag = append(tag, '"')
	c.Set(fiber.HeaderCacheControl, "private, no-cache")
	c.Response().Header.SetBytesV(fiber.HeaderETag, tag)
	if inm := c.Get(fiber.HeaderIfNoneMatch); inm != "" && etagMatch(inm, string(tag)) {
		return c.SendStatus(fiber.StatusNotModified)
	}
	c.Set(fiber.HeaderContentType, ctype)
	return c.Send(body)
}

// etagMatch is If-None-Match's weak comparison against tag.
func etagMatch(header, tag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == tag {
			return true
		}
	}
	return false
}

// sendCreated renders v with 201 and its Location.
func sendCreated(c *fiber.Ctx, location string, v any) error {
	if location != "" {
		c.Location(location)
	}
	return c.Status(fiber.StatusCreated).JSON(v)
}
