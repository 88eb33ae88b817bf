package cli

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/usipipo/usipipo/app/admin"
	"github.com/usipipo/usipipo/app/backup"
	"github.com/usipipo/usipipo/app/node"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/keyring"
)

// passphrase reads the operator's backup passphrase: --passphrase-file, or
// USIPIPO_BACKUP_PASSPHRASE.
func passphrase(file string, env Env) ([]byte, error) {
	if file != "" {
		p, err := node.ReadPassphraseFile(file)
		return []byte(p), err
	}
	if v, ok := env.LookupEnv("USIPIPO_BACKUP_PASSPHRASE"); ok && v != "" {
		return []byte(v), nil
	}
	return nil, errors.New("no backup passphrase: set USIPIPO_BACKUP_PASSPHRASE or pass --passphrase-file")
}

func backupCmd(ctx context.Context, args []string, env Env) error {
	c := newCommand("backup", env)
	var out, passFile string
	c.fs.StringVar(&out, "out", "", "file to write the encrypted backup to")
	c.fs.StringVar(&passFile, "passphrase-file", "", "file holding the backup passphrase")
	if err := c.none(args); err != nil {
		return err
	}
	if out == "" {
		fmt.Fprintln(env.Stderr, "usipipo backup: --out FILE is required")
		return errUsage
	}
	pass, err := passphrase(passFile, env)
	if err != nil {
		return err
	}
	tmp := out + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("creating %s: %w", out, err)
	}
	defer os.Remove(tmp)
	_, err = admin.NewClient(c.socket()).Download(ctx, "backup.create", admin.Passphrase{Passphrase: string(pass)}, f)
	if errors.Is(err, admin.ErrNotRunning) {
		// No node: read the database file directly.
		err = offlineBackup(ctx, c.data, f, pass, env.Version)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// A stream cut short by the node (a failure mid-backup) would still
		// look like a file: only a backup that decrypts to its end is kept.
		err = verifyStream(tmp, pass)
	}
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return err
	}
	fi, _ := os.Stat(out)
	return c.print(map[string]any{"file": out, "bytes": fi.Size()}, func(w io.Writer) {
		fmt.Fprintf(w, "backup written to %s (%s)\n", out, bytesHuman(uint64(fi.Size())))
	})
}

func offlineBackup(ctx context.Context, data string, f *os.File, pass []byte, version string) error {
	st, err := store.Open(store.Options{Path: filepath.Join(data, "usipipo.db"), ReadOnly: true})
	if err != nil {
		return err
	}
	defer st.Close()
	dk, err := node.DataKey(data, st)
	if err != nil {
		return err
	}
	pk, err := keyring.NewPassKey(pass, rand.Reader)
	if err != nil {
		return err
	}
	_, err = backup.Write(ctx, f, st, dk, pk, backup.Manifest{Version: version}, rand.Reader)
	return err
}

func restoreCmd(ctx context.Context, args []string, env Env) error {
	c := newCommand("restore", env)
	var in, passFile string
	c.fs.StringVar(&in, "in", "", "backup file to restore")
	c.fs.StringVar(&passFile, "passphrase-file", "", "file holding the backup passphrase")
	if err := c.none(args); err != nil {
		return err
	}
	if in == "" {
		fmt.Fprintln(env.Stderr, "usipipo restore: --in FILE is required")
		return errUsage
	}
	pass, err := passphrase(passFile, env)
	if err != nil {
		return err
	}
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	var res map[string]any
	cl := admin.NewClient(c.socket())
	var before map[string]any
	_ = cl.Call(ctx, "node.status", nil, &before)
	err = cl.Upload(ctx, "backup.restore", admin.Passphrase{Passphrase: string(pass)}, f, &res)
	if err == nil {
		err = awaitRestart(ctx, cl, before["started"])
	}
	if errors.Is(err, admin.ErrNotRunning) {
		if _, serr := f.Seek(0, 0); serr != nil {
			return serr
		}
		res, err = offlineRestore(ctx, c.data, f, pass)
	}
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	return c.print(res, func(w io.Writer) {
		fmt.Fprintf(w, "restored backup of node %v taken %v: %v\n", res["node"], res["created"], res["status"])
	})
}

func offlineRestore(ctx context.Context, data string, f *os.File, pass []byte) (map[string]any, error) {
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, err
	}
	m, path, err := backup.Read(ctx, f, pass, data)
	if err != nil {
		return nil, err
	}
	defer os.Remove(path)
	nodeKey, _, err := keyring.LoadNodeKey(data, os.Getenv("CREDENTIALS_DIRECTORY"), true, rand.Reader)
	if err != nil {
		return nil, err
	}
	if err := backup.Install(path, data, m, nodeKey, rand.Reader); err != nil {
		return nil, err
	}
	// The same shape as a running node's answer, so text and --json read alike.
	return map[string]any{"node": m.Node, "created": m.Created.UTC().Format(time.RFC3339Nano), "status": "restored"}, nil
}

// awaitRestart waits until the node answers again after swapping in a
// restored database, so the command returns once the node serves it.
func awaitRestart(ctx context.Context, cl *admin.Client, started any) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		var st map[string]any
		if err := cl.Call(ctx, "node.status", nil, &st); err == nil && st["started"] != started {
			if r, _ := st["restore"].(string); r != "restored" {
				return fmt.Errorf("the node restarted but the restore did not take: %s", r)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("the node did not come back within 60 s after the restore; check its logs")
}

// verifyStream checks that a backup file decrypts to its final chunk.
func verifyStream(path string, pass []byte) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := keyring.Decrypt(f, pass)
	if err == nil {
		_, err = io.Copy(io.Discard, r)
	}
	if err != nil {
		return fmt.Errorf("the written backup does not verify: %w", err)
	}
	return nil
}
