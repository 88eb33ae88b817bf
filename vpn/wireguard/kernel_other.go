//go:build !linux

package wireguard

import (
	"context"
	"errors"

	"golang.zx2c4.com/wireguard/tun"
)

var errTUNLinux = errors.New("wireguard tun mode needs Linux; use netstack")

// TUNCheck says what tun mode needs; elsewhere than Linux, everything.
type TUNCheck struct {
	Device, Capability, Firewall error
	FirewallTool                 string
	Forwarding                   []SysctlState
}

// SysctlState is one forwarding sysctl (Linux only).
type SysctlState struct {
	Key, Value string
	Writable   bool
}

// CheckTUN inspects this process and host for tun mode.
func CheckTUN() TUNCheck { return TUNCheck{Device: errTUNLinux} }

// Err is the first reason tun mode cannot start.
func (c TUNCheck) Err() error { return c.Device }

// CanCreateTUN is what --wg-mode auto asks.
func (c TUNCheck) CanCreateTUN() error { return c.Device }

type kernelPlane struct {
	fw     firewall
	limits connLimits
}

func (s *Server) startKernel() (tun.Device, error) { return nil, errTUNLinux }

func (k *kernelPlane) close(*Server) {}

func (k *kernelPlane) readCounters(context.Context, *serverMetrics) error { return nil }

func (s *Server) refreshFirewall() error { return nil }
