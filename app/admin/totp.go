package admin

import (
	"context"
	"fmt"

	"github.com/usipipo/usipipo/app"
)

// TOTPReset is the answer to admin.reset-totp.
type TOTPReset struct {
	Username string `json:"username"`
	// WasEnrolled: the login had a second factor, now removed (false: it
	// had none, and nothing changed).
	WasEnrolled bool `json:"was_enrolled"`
}

// resetTOTP turns a login's second factor and its recovery codes off, for
// an admin who lost the authenticator and every recovery code. The change
// is a domain command, so it is in the audit trail with the CLI as actor.
func (s *Server) resetTOTP(ctx context.Context, c *call) (any, error) {
	var p Target
	if err := c.params(&p); err != nil {
		return nil, err
	}
	user := nonEmpty(p.ID, app.DefaultAdmin)
	enrolled, _, err := s.svc.TOTPStatus(ctx, user)
	if err != nil {
		return nil, err
	}
	if !enrolled {
		return TOTPReset{Username: user}, nil
	}
	if err := s.svc.RemoveTOTP(ctx, app.ActorCLI, user); err != nil {
		return nil, fmt.Errorf("removing the second factor of %s: %w", user, err)
	}
	return TOTPReset{Username: user, WasEnrolled: true}, nil
}
