// Package admin is the node's admin socket, DATA/admin.sock (0600): the way
// the usipipo CLI talks to a running node, as headscale's CLI does.
//
// One connection carries one call. The client writes a Request as one JSON
// line; when Request.Stream is set it then sends raw bytes until it closes
// its write side (a backup to restore). The server answers with one
// Response line; when Response.Stream is set raw bytes follow until the
// connection closes (a backup being taken). Access control is the socket's
// file mode: whoever can open it is the operator.
package admin

import (
	"encoding/json"
	"errors"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/store/model"
)

// Request is one call.
type Request struct {
	Method string          `json:"method"`
	Params json.RawMessage `json:"params,omitempty"`
	Stream bool            `json:"stream,omitempty"`
}

// Response is the answer to a call.
type Response struct {
	Result json.RawMessage `json:"result,omitempty"`
	Error  *Error          `json:"error,omitempty"`
	Stream bool            `json:"stream,omitempty"`
}

// Error is a failed call: a stable code and a message for humans.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Message }

// Is lets errors.Is match a remote error against the domain sentinels.
func (e *Error) Is(target error) bool {
	for code, err := range codes() {
		if code == e.Code && err == target {
			return true
		}
	}
	return false
}

func codes() map[string]error {
	return map[string]error{
		"not_found":      model.ErrNotFound,
		"exists":         model.ErrExists,
		"invalid":        model.ErrInvalid,
		"quota":          model.ErrQuota,
		"trial_used":     model.ErrTrialUsed,
		"trial_disabled": model.ErrTrialDisabled,
		"banned":         model.ErrBanned,
		"erased":         model.ErrErased,
		"state":          model.ErrState,
		"balance":        model.ErrBalance,
		"forbidden":      model.ErrForbidden,
		"protocol":       model.ErrProtocol,
		"unauthorized":   app.ErrUnauthorized,
	}
}

// toError maps a service error to its wire form. Unknown errors keep their
// message (the socket's user is the operator) under code "internal".
func toError(err error) *Error {
	for code, sentinel := range codes() {
		if errors.Is(err, sentinel) {
			return &Error{Code: code, Message: err.Error()}
		}
	}
	return &Error{Code: "internal", Message: err.Error()}
}
