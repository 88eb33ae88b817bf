package admin

import (
	"context"
	"fmt"
	"strings"
	"unicode"
)

// QvaPayCredentials are the node's QvaPay merchant app id and secret
// (pay.qvapay). The secret travels only over the 0600 socket and is sealed
// by the payment service before it is stored; no answer or log echoes it.
type QvaPayCredentials struct {
	AppID  string `json:"app_id"`
	Secret string `json:"secret"`
}

// QvaPaySet is the answer to pay.qvapay.
type QvaPaySet struct {
	AppID string `json:"app_id"`
}

// Payments is what the pay.* calls need from the running node.
type Payments interface {
	SetQvaPayCredentials(ctx context.Context, appID, secret string) error
}

const maxQvaPayField = 256

func (s *Server) payQvaPay(ctx context.Context, c *call) (any, error) {
	p, ok := s.node.(Payments)
	if !ok {
		return nil, fmt.Errorf("this node has no payment service: %w", errInvalid)
	}
	var in QvaPayCredentials
	if err := c.params(&in); err != nil {
		return nil, err
	}
	in.AppID, in.Secret = strings.TrimSpace(in.AppID), strings.TrimSpace(in.Secret)
	if err := checkQvaPayField("app id", in.AppID); err != nil {
		return nil, err
	}
	if err := checkQvaPayField("secret", in.Secret); err != nil {
		return nil, err
	}
	if err := p.SetQvaPayCredentials(ctx, in.AppID, in.Secret); err != nil {
		return nil, err
	}
	return QvaPaySet{AppID: in.AppID}, nil
}

// checkQvaPayField refuses empty, overlong or non-printable values (a
// secret file with two lines, a binary file by mistake) without quoting them.
func checkQvaPayField(what, v string) error {
	if v == "" || len(v) > maxQvaPayField {
		return fmt.Errorf("qvapay %s must be 1..%d characters: %w", what, maxQvaPayField, errInvalid)
	}
	for _, r := range v {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return fmt.Errorf("qvapay %s has a space or a control character: %w", what, errInvalid)
		}
	}
	return nil
}
