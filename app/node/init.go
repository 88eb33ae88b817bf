package node

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/keyring"
)

// InitResult is what init hands the operator, once.
type InitResult struct {
	AdminUser     string `json:"admin_user"`
	AdminPassword string `json:"admin_password"`
	Passphrase    string `json:"backup_passphrase"`
	WGPublicKey   string `json:"wireguard_public_key"`
}

// Init prepares an empty data dir: the node key (unless systemd provides
// it), the database with its data key, the WireGuard server key, the backup
// passphrase and a one-time admin password. Passphrase may be given (from
// --passphrase-file); otherwise one is generated.
func Init(ctx context.Context, data, passphrase string, r io.Reader) (*InitResult, error) {
	if ok, err := initialised(data); err != nil || ok {
		if err == nil {
			err = fmt.Errorf("%s already holds a node (usipipo.db exists); nothing changed", data)
		}
		return nil, err
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, fmt.Errorf("creating data dir: %w", err)
	}
	nodeKey, _, err := keyring.LoadNodeKey(data, credDir(), true, r)
	if err != nil {
		return nil, err
	}
	// Build the new database beside its final name, so an init cut short
	// never leaves a half-made node that serve would take as ready.
	tmp := filepath.Join(data, ".usipipo.db.init")
	os.Remove(tmp)
	res, err := initStore(ctx, tmp, nodeKey, passphrase, r)
	if err != nil {
		os.Remove(tmp)
		return nil, err
	}
	if err := os.Rename(tmp, dbPath(data)); err != nil {
		return nil, fmt.Errorf("installing database: %w", err)
	}
	return res, syncDir(data)
}

func initStore(ctx context.Context, path string, nodeKey keyring.Key, passphrase string, r io.Reader) (*InitResult, error) {
	st, err := store.Open(store.Options{Path: path})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	sec, err := openSecrets(st, nodeKey, r)
	if err != nil {
		return nil, err
	}
	if passphrase == "" {
		if passphrase, err = keyring.NewPassphrase(r); err != nil {
			return nil, err
		}
	}
	if err := sec.setPassKey(st, []byte(passphrase), r); err != nil {
		return nil, err
	}
	svc, err := app.New(app.Options{Store: st, DataKey: sec.dataKey, Rand: r, Now: time.Now})
	if err != nil {
		return nil, err
	}
	pw, err := svc.ResetAdminPassword(ctx, app.ActorCLI, app.DefaultAdmin)
	if err != nil {
		return nil, err
	}
	return &InitResult{AdminUser: app.DefaultAdmin, AdminPassword: pw, Passphrase: passphrase, WGPublicKey: sec.wgPublic}, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// WriteInitResult prints the one-time secrets for a terminal.
func WriteInitResult(w io.Writer, data string, r *InitResult) {
	fmt.Fprintf(w, `usipipo node initialised in %s

  Panel login:        %s
  One-time password:  %s   (you must change it at first login)
  Backup passphrase:  %s
                      Keep it safe: backups restore on a new machine with it alone.
  WireGuard key:      %s

These secrets are shown once and are not written to any log.
`, data, r.AdminUser, r.AdminPassword, r.Passphrase, r.WGPublicKey)
}
