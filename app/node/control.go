package node

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/usipipo/usipipo/app/backup"
	"github.com/usipipo/usipipo/store/keyring"
	"github.com/usipipo/usipipo/store/model"
)

// Status is what `usipipo` verbs and the panel show about a running node.
type Status struct {
	Version   string         `json:"version"`
	Node      string         `json:"node"`
	Uptime    string         `json:"uptime"`
	Started   time.Time      `json:"started"`
	HTTP      string         `json:"http"`
	DataDir   string         `json:"data_dir"`
	Installed map[string]int `json:"installed"`
	// Restore is the outcome of the restore that restarted the node, if one did.
	Restore string `json:"restore,omitempty"`
	// PID is the serving process; Upgrade the last upgrade's state, if any.
	PID     int           `json:"pid"`
	Upgrade *UpgradeState `json:"upgrade,omitempty"`
}

// Status reports the node's state (admin.Node).
func (n *Node) Status(ctx context.Context) (any, error) {
	return Status{Version: n.version, Node: n.Config.Node, Uptime: time.Since(n.started).Round(time.Second).String(),
		Started: n.started.UTC(), HTTP: n.HTTPAddr.String(), DataDir: n.Config.Data, Installed: n.recon.Installed(), Restore: n.restored,
		PID: os.Getpid(), Upgrade: n.upgradeState.Load()}, nil
}

// Check runs the store's consistency and index checks (admin.Node).
func (n *Node) Check(ctx context.Context) error { return n.Store.Check() }

// Backup writes a hot, encrypted backup to w (admin.Node).
func (n *Node) Backup(ctx context.Context, w io.Writer, passphrase []byte) error {
	if len(passphrase) == 0 {
		return fmt.Errorf("a backup passphrase is required (USIPIPO_BACKUP_PASSPHRASE or --passphrase-file): %w", model.ErrInvalid)
	}
	// The per-call PassKey costs one scrypt: fine for an operator's backup.
	pk, err := keyring.NewPassKey(passphrase, rand.Reader)
	if err != nil {
		return err
	}
	_, err = backup.Write(ctx, w, n.Store, n.sec.dataKey, pk, backup.Manifest{Node: n.Config.Node, Version: n.version}, rand.Reader)
	return err
}

// RestoreResult answers a restore.
type RestoreResult struct {
	Node    string    `json:"node"`
	Created time.Time `json:"created"`
	Status  string    `json:"status"`
}

// Restore verifies a backup and swaps it in: the node stops every part,
// moves the current database aside, installs the restored one and starts
// again (admin.Node).
func (n *Node) Restore(ctx context.Context, r io.Reader, passphrase []byte) (any, error) {
	if !n.restoreMu.TryLock() {
		return nil, fmt.Errorf("a restore is already in progress")
	}
	m, path, err := backup.Read(ctx, r, passphrase, n.Config.Data)
	if err != nil {
		n.restoreMu.Unlock()
		return nil, err
	}
	staged := stagedPath(n.Config.Data)
	if err := os.Rename(path, staged); err != nil {
		os.Remove(path)
		n.restoreMu.Unlock()
		return nil, fmt.Errorf("staging restored database: %w", err)
	}
	n.stagedManifest = m
	n.restart <- staged
	return RestoreResult{Node: m.Node, Created: m.Created, Status: "restored; node restarting"}, nil
}

// swapIn installs a staged restore once the store is closed.
func (n *Node) swapIn(staged string) error {
	defer os.Remove(staged)
	return backup.Install(staged, n.Config.Data, n.stagedManifest, n.sec.nodeKey, rand.Reader)
}
