package node

import (
	"context"
	"errors"

	"github.com/usipipo/usipipo/app/pay"
)

// SetQvaPayCredentials implements admin.Payments: the operator's QvaPay
// merchant app, sealed under the data key by the payment service.
func (n *Node) SetQvaPayCredentials(ctx context.Context, appID, secret string) error {
	if n.Pay == nil {
		return errors.New("the payment service is not running yet")
	}
	return n.Pay.SetQvaPayCredentials(ctx, pay.Actor("cli"), appID, secret)
}
