package web

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/gofiber/fiber/v2"
)

// ProblemContentType is the media type of every error response (RFC 9457).
const ProblemContentType = "application/problem+json"

// Problem is an RFC 9457 problem detail. Handlers return it (possibly
// wrapped) as their error; the server's one error handler renders it as
// application/problem+json. Detail is shown to the client as it is, so it
// must not carry internal error text.
type Problem struct {
	Type   string // URI reference identifying the problem type; "" means "about:blank"
	Title  string // short summary of the type; "" means the status text
	Status int    // HTTP status code, 400..599
	Detail string // explanation specific to this occurrence
}

// NewProblem returns a Problem. An empty title becomes the status text.
func NewProblem(status int, typ, title, detail string) *Problem {
	if title == "" {
		title = http.StatusText(status)
	}
	return &Problem{Type: typ, Title: title, Status: status, Detail: detail}
}

// Error implements error: "<status> <title>: <detail>".
func (p *Problem) Error() string {
	s := strconv.Itoa(p.Status) + " " + p.Title
	if p.Detail != "" {
		s += ": " + p.Detail
	}
	return s
}

// problemBody is the wire form of a problem.
type problemBody struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	Instance  string `json:"instance"`
	RequestID string `json:"request_id"`
}

const internalDetail = "The server encountered an internal error. Quote the request id when reporting it."

// handleError is the server's only error handler: fiber calls it for
// errors that reach the top of the handler chain and for errors of the
// HTTP layer (malformed requests, bodies over the limit, timeouts), and the
// access log middleware calls it (through fiber) as soon as the chain
// returns an error, so that metrics and the access log see the status that
// is sent.
//
// A *Problem (also wrapped) is rendered as it is; a *fiber.Error with its
// code and message; any other error becomes a 500 whose detail is generic,
// and is logged with the request id. Statuses of 500 and above are always
// logged.
func (s *Server) handleError(c *fiber.Ctx, err error) error {
	var (
		p  *Problem
		fe *fiber.Error
		b  problemBody
	)
	switch {
	case errors.As(err, &p):
		b = problemBody{Type: p.Type, Title: p.Title, Status: p.Status, Detail: p.Detail}
		if b.Status < 400 || b.Status > 599 {
			s.log.LogAttrs(c.UserContext(), slog.LevelError, "invalid problem status",
				slog.Int("status", b.Status), slog.String("request_id", requestIDOf(c)))
			b = problemBody{Title: http.StatusText(http.StatusInternalServerError),
				Status: http.StatusInternalServerError, Detail: internalDetail}
		}
	case errors.As(err, &fe):
		b = problemBody{Title: http.StatusText(fe.Code), Status: fe.Code, Detail: fe.Message}
		if b.Title == "" {
			b.Title = fe.Message
		}
		if fe.Code < 400 || fe.Code > 599 {
			b = problemBody{Title: http.StatusText(http.StatusInternalServerError),
				Status: http.StatusInternalServerError, Detail: internalDetail}
		}
	default:
		b = problemBody{Title: http.StatusText(http.StatusInternalServerError),
			Status: http.StatusInternalServerError, Detail: internalDetail}
	}
	if b.Type == "" {
		b.Type = "about:blank"
	}
	if b.Title == "" {
		b.Title = http.StatusText(b.Status)
	}
	b.Instance = c.Path()
	b.RequestID = requestIDOf(c)
	if b.RequestID == "" {
		// Errors of the HTTP layer never passed the request id middleware.
		b.RequestID = newRequestID()
		c.Set(fiber.HeaderXRequestID, b.RequestID)
	}
	if b.Status >= 500 && !errors.As(err, new(panicError)) { // panics are logged with their stack
		s.log.LogAttrs(c.UserContext(), slog.LevelError, "http_error",
			slog.String("request_id", b.RequestID),
			slog.String("method", c.Method()),
			slog.String("path", b.Instance),
			slog.Int("status", b.Status),
			slog.String("error", err.Error()))
	}
	body, merr := json.Marshal(b)
	if merr != nil {
		return merr
	}
	c.Status(b.Status)
	c.Set(fiber.HeaderContentType, ProblemContentType)
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Send(body)
}
