package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/usipipo/usipipo/app/admin"
	"github.com/usipipo/usipipo/app/config"
	"github.com/usipipo/usipipo/app/node"
)

// envFileHint is how a seller's shell gets the settings the installer's
// systemd unit passes to the node (EnvironmentFile=); a subshell, so the
// settings (a bot token among them) do not stay in the shell afterwards.
const envFileHint = "(set -a; . /etc/usipipo/usipipo.env; usipipo doctor --data DATA)"

// nodeStatus asks the node serving on data for its status; nil when none
// answers.
func nodeStatus(ctx context.Context, data string) *node.Status {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var st node.Status
	if err := admin.NewClient(filepath.Join(data, "admin.sock")).Call(ctx, "node.status", nil, &st); err != nil {
		return nil
	}
	return &st
}

// checkRunningPorts reports the sockets the running node holds, as it
// reports them, rather than the doctor's own listen settings: a shell
// without the node's environment file would otherwise describe defaults.
func checkRunningPorts(st *node.Status) []finding {
	if len(st.Listeners) == 0 {
		// A node older than this doctor: it does not say what it bound.
		return []finding{bad("warn", "ports", "the running node (usipipo "+st.Version+") does not report its sockets; it serves http on "+st.HTTP,
			"upgrade the node, or `ss -lntup` shows what it listens on")}
	}
	var out []finding
	for _, l := range st.Listeners {
		out = append(out, ok("port "+l.Name, fmt.Sprintf("%s %s held by the running node (%s %s)", l.Network, l.Bound, l.Flag, l.Setting)))
	}
	return out
}

// checkRunningHost reports what the running node's client configs and
// links point at, and its choice of MTProto secrets.
func checkRunningHost(st *node.Status) []finding {
	var out []finding
	switch {
	case st.Settings == nil || st.PublicHost == "":
	case st.Settings.PublicHost == "":
		out = append(out, bad("warn", "public host", "--public-host is unset in the running node: links point at "+st.PublicHost+", an address it guessed",
			"set USIPIPO_PUBLIC_HOST to this server's DNS name or public IP in the node's settings and restart it"))
	default:
		out = append(out, ok("public host", "links point at "+st.PublicHost+" (--public-host of the running node)"))
	}
	if st.MTProto == nil {
		return out
	}
	why := st.MTProto.Why + " (the running node)"
	if st.MTProto.Secrets == "ee" {
		return append(out, ok("mtproto", why))
	}
	return append(out, bad("warn", "mtproto", why, "give --mtproto-domain a DNS name, best one that points at this server, or use a DNS name as --public-host"))
}

// tunSettings are the settings checkTUN judges: the running node's
// --wg-mode, since what tun mode lacks matters only if the node uses it.
func tunSettings(cfg *config.Config, st *node.Status) *config.Config {
	if st == nil || st.Settings == nil || st.Settings.WGMode == "" || st.Settings.WGMode == cfg.WGMode {
		return cfg
	}
	c := *cfg
	c.WGMode = st.Settings.WGMode
	return &c
}

// checkSettingsMatch warns when the doctor's settings differ from the
// running node's: the checks that read the doctor's own settings (webhook,
// outline-api) then describe another configuration, most often
// because this shell lacks the node's environment file.
func checkSettingsMatch(cfg *config.Config, st *node.Status) []finding {
	type pair struct{ flag, here, node string }
	var diffs []pair
	mine := map[string]string{"--http": cfg.HTTP, "--wg-listen": cfg.WGListen, "--ss-listen": cfg.SSListen,
		"--mtproto-listen": cfg.MTProtoListen, "--public-listen": cfg.PublicListen, "--outline-api": cfg.OutlineAPI}
	seen := map[string]bool{}
	for _, l := range st.Listeners {
		if seen[l.Flag] {
			continue // --ss-listen is two sockets
		}
		seen[l.Flag] = true
		if here, known := mine[l.Flag]; known && here != l.Setting {
			diffs = append(diffs, pair{l.Flag, here, l.Setting})
		}
	}
	if len(st.Listeners) > 0 {
		// Off in the node: no listener reported.
		for _, f := range []string{"--public-listen", "--outline-api"} {
			if !seen[f] && mine[f] != "" {
				diffs = append(diffs, pair{f, mine[f], ""})
			}
		}
	}
	if s := st.Settings; s != nil {
		for _, p := range []pair{{"--public-host", cfg.PublicHost, s.PublicHost}, {"--mtproto-domain", cfg.MTProtoDomain, s.MTProtoDomain},
			{"--wg-mode", cfg.WGMode, s.WGMode}} {
			if p.here != p.node {
				diffs = append(diffs, p)
			}
		}
	}
	if len(diffs) == 0 {
		return []finding{ok("settings", "this doctor's settings match the running node's")}
	}
	parts := make([]string, len(diffs))
	for i, d := range diffs {
		parts[i] = fmt.Sprintf("%s %q here, %q in the node", d.flag, d.here, d.node)
	}
	return []finding{bad("warn", "settings", "this doctor's settings differ from the running node's: "+strings.Join(parts, "; ")+
		"; the ports, public host, mtproto and tun lines above follow the node, the other checks this doctor's settings",
		"run doctor with the node's settings, e.g. under the installer's systemd unit: "+strings.Replace(envFileHint, "DATA", cfg.Data, 1))}
}
