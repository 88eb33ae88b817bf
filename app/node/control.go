package node

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
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
	// Listeners are the sockets the node serves on: what each setting asked
	// for and what it bound, so `usipipo doctor` reports the node's real
	// ports rather than its own flags' values.
	Listeners []Listener `json:"listeners,omitempty"`
	// PublicHost is what client configs and links point at: --public-host,
	// or an address of this machine when that is unset.
	PublicHost string `json:"public_host,omitempty"`
	// Settings are the node's values of the settings doctor compares with
	// its own, to show a shell that lacks the node's environment file.
	Settings *StatusSettings `json:"settings,omitempty"`
	// MTProto is the kind of MTProto secret the node hands out, and why.
	MTProto *MTProtoStatus `json:"mtproto,omitempty"`
}

// Listener is one socket of a running node.
type Listener struct {
	Name    string `json:"name"`    // http, wireguard, outline, mtproto, public, outline-api
	Network string `json:"network"` // tcp or udp
	Flag    string `json:"flag"`    // the setting, e.g. --mtproto-listen
	Setting string `json:"setting"` // its value, e.g. ":443"
	Bound   string `json:"bound"`   // the socket's address, e.g. "[::]:443"
}

// StatusSettings are settings as the running node read them.
type StatusSettings struct {
	PublicHost    string `json:"public_host"`
	MTProtoDomain string `json:"mtproto_domain"`
	WGMode        string `json:"wg_mode"`
}

// MTProtoStatus is the node's choice of MTProto secrets (app.ProxySecrets).
type MTProtoStatus struct {
	Secrets string `json:"secrets"`          // ee (FakeTLS) or dd (padded intermediate)
	Domain  string `json:"domain,omitempty"` // the cloak domain of ee secrets
	Why     string `json:"why"`
}

// boundSockets records the data planes' sockets as they are bound
// (planes.go), for Status. Status reads them from the admin socket's
// goroutines, hence the mutex.
type boundSockets struct {
	mu  sync.Mutex
	all []Listener
}

func (b *boundSockets) add(name, network, flag, setting string, addr net.Addr) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.all = append(b.all, Listener{Name: name, Network: network, Flag: flag, Setting: setting, Bound: addr.String()})
}

func (b *boundSockets) list() []Listener {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.all)
}

// Status reports the node's state (admin.Node).
func (n *Node) Status(ctx context.Context) (any, error) {
	cfg := n.Config
	st := Status{Version: n.version, Node: cfg.Node, Uptime: time.Since(n.started).Round(time.Second).String(),
		Started: n.started.UTC(), HTTP: n.HTTPAddr.String(), DataDir: cfg.Data, Installed: n.recon.Installed(), Restore: n.restored,
		PID: os.Getpid(), Upgrade: n.upgradeState.Load(),
		Settings: &StatusSettings{PublicHost: cfg.PublicHost, MTProtoDomain: cfg.MTProtoDomain, WGMode: cfg.WGMode}}
	st.Listeners = append(st.Listeners, Listener{Name: "http", Network: "tcp", Flag: "--http", Setting: cfg.HTTP, Bound: st.HTTP})
	st.Listeners = append(st.Listeners, n.bound.list()...)
	if a := n.PublicAddr(); a != nil {
		st.Listeners = append(st.Listeners, Listener{Name: "public", Network: "tcp", Flag: "--public-listen", Setting: cfg.PublicListen, Bound: a.String()})
	}
	if a := n.OutlineAPIAddr(); a != nil {
		st.Listeners = append(st.Listeners, Listener{Name: "outline-api", Network: "tcp", Flag: "--outline-api", Setting: cfg.OutlineAPI, Bound: a.String()})
	}
	if n.Service != nil {
		st.PublicHost = n.endpoints().PublicHost
		p := n.Service.ProxySecrets()
		st.MTProto = &MTProtoStatus{Secrets: "dd", Domain: p.Domain, Why: p.Why}
		if p.FakeTLS {
			st.MTProto.Secrets = "ee"
		}
	}
	return st, nil
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
