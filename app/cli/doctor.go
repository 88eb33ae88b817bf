package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/app/admin"
	"github.com/usipipo/usipipo/app/config"
	"github.com/usipipo/usipipo/store"
)

// finding is one doctor check: its verdict and what to do about it.
type finding struct {
	Check  string `json:"check"`
	Level  string `json:"level"` // ok, warn, fail
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

func doctor(ctx context.Context, args []string, env Env) error {
	var asJSON bool
	var rest []string
	for _, a := range args {
		if a == "--json" || a == "-json" {
			asJSON = true
			continue
		}
		rest = append(rest, a)
	}
	cfg, err := settings(rest, env)
	if err != nil {
		if errors.Is(err, errUsage) {
			return err
		}
		return fmt.Errorf("settings: %w", err)
	}
	// A running node is asked what it serves: this process's settings may
	// not be the node's (a shell without the unit's environment file).
	st := nodeStatus(ctx, cfg.Data)
	var fs []finding
	fs = append(fs, checkDataDir(cfg.Data)...)
	fs = append(fs, checkDatabase(ctx, cfg.Data, st != nil))
	if st != nil {
		fs = append(fs, checkRunningPorts(st)...)
	} else {
		fs = append(fs, checkPorts(cfg)...)
	}
	fs = append(fs, checkClock(), checkDisk(cfg.Data))
	fs = append(fs, checkOutlineAPI(cfg)...)
	fs = append(fs, checkTUN(tunSettings(cfg, st))...)
	fs = append(fs, checkWebhook(ctx, cfg, systemWebhookEnv())...)
	if st != nil {
		fs = append(fs, checkRunningHost(st)...)
		fs = append(fs, checkSettingsMatch(cfg, st)...)
	} else {
		fs = append(fs, checkMTProtoSecrets(cfg))
	}
	failed := 0
	for _, f := range fs {
		if f.Level == "fail" {
			failed++
		}
	}
	c := &command{env: env, json: asJSON}
	if err := c.print(fs, func(w io.Writer) { printFindings(w, fs) }); err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("doctor: %d problem(s) to fix", failed)
	}
	return nil
}

// checkMTProtoSecrets says which MTProto secrets the node hands out: ee
// (FakeTLS) needs a DNS name to cloak as, else links carry dd secrets.
func checkMTProtoSecrets(cfg *config.Config) finding {
	p := app.ChooseProxySecrets(cfg.MTProtoDomain, cfg.PublicHost)
	if p.FakeTLS {
		return ok("mtproto", p.Why)
	}
	return bad("warn", "mtproto", p.Why, "give --mtproto-domain a DNS name, best one that points at this server, or use a DNS name as --public-host")
}

func printFindings(w io.Writer, fs []finding) {
	for _, f := range fs {
		mark := map[string]string{"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}[f.Level]
		fmt.Fprintf(w, "%s  %-10s %s\n", mark, f.Check, f.Detail)
		if f.Fix != "" {
			fmt.Fprintf(w, "      %-10s fix: %s\n", "", f.Fix)
		}
	}
}

func ok(check, detail string) finding { return finding{Check: check, Level: "ok", Detail: detail} }

func bad(level, check, detail, fix string) finding {
	return finding{Check: check, Level: level, Detail: detail, Fix: fix}
}

func checkDataDir(data string) []finding {
	var out []finding
	fi, err := os.Stat(data)
	if err != nil {
		return []finding{bad("fail", "data dir", err.Error(), "run `usipipo init --data "+data+"`")}
	}
	if fi.Mode().Perm()&0o077 != 0 {
		out = append(out, bad("warn", "data dir", fmt.Sprintf("%s is mode %o: others can read it", data, fi.Mode().Perm()), "chmod 700 "+data))
	} else {
		out = append(out, ok("data dir", data+" is private (0700)"))
	}
	for _, name := range []string{"node.key", "admin.sock"} {
		p := filepath.Join(data, name)
		fi, err := os.Stat(p)
		switch {
		case errors.Is(err, os.ErrNotExist) && name == "node.key" && os.Getenv("CREDENTIALS_DIRECTORY") == "":
			out = append(out, bad("fail", name, "missing: the database cannot be opened without it", "restore node.key from your records, or restore a backup with `usipipo restore`"))
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			out = append(out, bad("fail", name, err.Error(), "check the data dir's permissions"))
		case fi.Mode().Perm() != 0o600:
			out = append(out, bad("fail", name, fmt.Sprintf("mode %o, want 600", fi.Mode().Perm()), "chmod 600 "+p))
		default:
			out = append(out, ok(name, "mode 600"))
		}
	}
	return out
}

func checkDatabase(ctx context.Context, data string, running bool) finding {
	if running {
		err := admin.NewClient(filepath.Join(data, "admin.sock")).Call(ctx, "node.check", nil, nil)
		if err != nil {
			return bad("fail", "database", "the running node's check failed: "+err.Error(), "restore the newest verified backup from "+filepath.Join(data, "backups"))
		}
		return ok("database", "consistent and indexes match (checked by the running node)")
	}
	path := filepath.Join(data, "usipipo.db")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return bad("warn", "database", "no database yet", "`usipipo serve` or `usipipo init` creates it")
	}
	st, err := store.Open(store.Options{Path: path, ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return bad("fail", "database", err.Error(), "stop whatever holds the file, or start the node once to migrate it")
	}
	defer st.Close()
	if err := st.Check(); err != nil {
		return bad("fail", "database", err.Error(), "restore the newest verified backup from "+filepath.Join(data, "backups"))
	}
	return ok("database", "consistent and indexes match")
}

// checkPorts binds every listen address the node needs; with no node
// running (checkRunningPorts reports a running node's sockets).
func checkPorts(cfg *config.Config) []finding {
	type want struct{ name, network, addr string }
	wants := []want{{"http", "tcp", cfg.HTTP}, {"wireguard", "udp", cfg.WGListen}, {"outline", "tcp", cfg.SSListen},
		{"outline", "udp", cfg.SSListen}, {"mtproto", "tcp", cfg.MTProtoListen}}
	if cfg.PublicListen != "" {
		wants = append(wants, want{"public", "tcp", cfg.PublicListen})
	}
	var out []finding
	for _, w := range wants {
		check := "port " + w.name
		var err error
		if w.network == "udp" {
			var pc net.PacketConn
			if pc, err = net.ListenPacket(w.network, w.addr); err == nil {
				pc.Close()
			}
		} else {
			var ln net.Listener
			if ln, err = net.Listen(w.network, w.addr); err == nil {
				ln.Close()
			}
		}
		switch {
		case err == nil:
			out = append(out, ok(check, fmt.Sprintf("%s %s is free", w.network, w.addr)))
		case errors.Is(err, syscall.EADDRINUSE):
			out = append(out, bad("fail", check, fmt.Sprintf("%s %s is in use by another program", w.network, w.addr), "stop it (`ss -lntup` shows which) or choose another address"))
		case errors.Is(err, syscall.EACCES):
			out = append(out, bad("fail", check, fmt.Sprintf("%s %s needs privileges", w.network, w.addr), "grant CAP_NET_BIND_SERVICE (the systemd unit does) or use a port above 1023"))
		default:
			out = append(out, bad("fail", check, err.Error(), "check the address setting"))
		}
	}
	return out
}

func checkClock() finding {
	now := time.Now()
	if now.Year() < 2025 {
		return bad("fail", "clock", "the clock reads "+now.Format(time.RFC3339), "set the time (timedatectl set-ntp true)")
	}
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return bad("warn", "clock", "cannot read the kernel's sync state: "+err.Error(), "")
	}
	if state == unix.TIME_ERROR || tx.Status&unix.STA_UNSYNC != 0 {
		return bad("warn", "clock", "not synchronised by NTP (expiry, payments and TLS need a right clock)", "timedatectl set-ntp true")
	}
	return ok("clock", "synchronised")
}

func checkDisk(data string) finding {
	var s unix.Statfs_t
	if err := unix.Statfs(data, &s); err != nil {
		return bad("warn", "disk", err.Error(), "")
	}
	free := s.Bavail * uint64(s.Bsize)
	total := s.Blocks * uint64(s.Bsize)
	detail := fmt.Sprintf("%s free of %s", bytesHuman(free), bytesHuman(total))
	if free < 512<<20 || (total > 0 && free*100/total < 5) {
		return bad("fail", "disk", detail, "free space: old backups in "+filepath.Join(data, "backups")+", logs, or grow the disk")
	}
	if free < 2<<30 {
		return bad("warn", "disk", detail, "free some space soon")
	}
	return ok("disk", detail)
}
