//go:build !linux

package outline

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"
)

// Elsewhere the server's sockets are net's own; see sock_linux.go.

type sockListener struct{}

func newSockListener(net.Listener) *sockListener { return nil }

func (*sockListener) accept() (net.Conn, error) { return nil, errors.ErrUnsupported }

func (*sockListener) close() error { return nil }

// dialSock is never called here: leanDial is false.
func dialSock(context.Context, netip.AddrPort, time.Duration) (net.Conn, error) {
	return nil, errors.ErrUnsupported
}

const leanDial = false
