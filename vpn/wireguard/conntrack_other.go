//go:build !linux

package wireguard

import "context"

// Tun mode, and with it conntrack, is Linux only.

func (s *Server) endFlowsLocked(*peer) {}

func (s *Server) syncKernelLocked(ctx context.Context) error { return s.syncConnLimitsLocked(ctx) }

func (s *Server) readKernelConns() error { return nil }

func (s *Server) kernelConnsLocked(*peer) int { return 0 }
