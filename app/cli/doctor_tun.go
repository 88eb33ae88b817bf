package cli

import (
	"github.com/usipipo/usipipo/app/config"
	"github.com/usipipo/usipipo/vpn/wireguard"
)

// checkTUN says what WireGuard's tun mode lacks here: the device, the
// capability, nft and the forwarding sysctls. A lack fails with --wg-mode
// tun and warns with auto (which then falls back to netstack).
func checkTUN(cfg *config.Config) []finding {
	if cfg.WGMode == config.WGModeNetstack {
		return []finding{ok("tun", "--wg-mode netstack: WireGuard needs no TUN device")}
	}
	level := "warn"
	if cfg.WGMode == config.WGModeTUN {
		level = "fail"
	}
	fallback := ""
	if cfg.WGMode == config.WGModeAuto {
		fallback = " (auto falls back to netstack mode)"
	}
	c := wireguard.CheckTUN()
	var out []finding
	add := func(check string, err error, good, fix string) {
		if err != nil {
			out = append(out, bad(level, check, err.Error()+fallback, fix))
			return
		}
		out = append(out, ok(check, good))
	}
	add("tun", c.Device, "/dev/net/tun can be opened",
		"load the tun module (modprobe tun); under systemd allow the device (DeviceAllow=/dev/net/tun rw)")
	add("tun cap", c.Capability, "CAP_NET_ADMIN is effective",
		"run as root or grant CAP_NET_ADMIN (AmbientCapabilities=CAP_NET_ADMIN in the systemd unit)")
	add("tun fw", c.Firewall, c.FirewallTool+" is installed: the node installs its NAT and egress rules with it",
		"apt-get install nftables (or iptables)")
	for _, s := range c.Forwarding {
		switch {
		case s.Value == "1":
			out = append(out, ok("tun fwd", s.Key+" = 1"))
		case s.Writable:
			out = append(out, ok("tun fwd", s.Key+" = "+s.Value+": the node sets it to 1 in tun mode and puts it back on exit"))
		default:
			out = append(out, bad(level, "tun fwd", s.Key+" = "+s.Value+" and this process may not change it"+fallback,
				"sysctl -w "+s.Key+"=1 (and persist it in /etc/sysctl.d/)"))
		}
	}
	if c.Err() == nil {
		out = append(out, ok("wg mode", "tun mode can run: WireGuard uses kernel interface "+cfg.WGIface))
	}
	return out
}
