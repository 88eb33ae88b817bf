package admin

import (
	"context"
	"fmt"
	"time"
)

// Upgrade asks the node to hand itself over to a new binary (node.upgrade).
type Upgrade struct {
	// Binary is the new executable; "" means the node's own path (where the
	// installer puts the new version).
	Binary string `json:"binary,omitempty"`
	// Timeout bounds the new process's start, from exec to serving.
	Timeout time.Duration `json:"timeout,omitempty"`
	// Drain bounds how long the old process keeps relaying connections it
	// had accepted before it cuts them and exits.
	Drain time.Duration `json:"drain,omitempty"`
}

// UpgradeStarted answers node.upgrade: the new process runs. Its outcome
// shows in node.status (pid and upgrade).
type UpgradeStarted struct {
	OldPID int    `json:"old_pid"`
	NewPID int    `json:"new_pid"`
	Binary string `json:"binary"`
}

// Upgrader is a Node that can hand itself over to a new binary.
type Upgrader interface {
	Upgrade(ctx context.Context, p Upgrade) (UpgradeStarted, error)
}

func (s *Server) upgrade(ctx context.Context, c *call) (any, error) {
	u, ok := s.node.(Upgrader)
	if !ok {
		return nil, fmt.Errorf("this node cannot upgrade in place: %w", errInvalid)
	}
	var p Upgrade
	if err := c.params(&p); err != nil {
		return nil, err
	}
	if p.Timeout < 0 || p.Drain < 0 {
		return nil, fmt.Errorf("node.upgrade: negative timeout: %w", errInvalid)
	}
	return u.Upgrade(ctx, p)
}
