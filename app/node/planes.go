package node

import (
	"context"
	"fmt"
	"maps"

	"github.com/usipipo/usipipo/app/config"
	"github.com/usipipo/usipipo/app/logging"
	"github.com/usipipo/usipipo/app/plane"
	"github.com/usipipo/usipipo/proxy/mtproto"
	"github.com/usipipo/usipipo/vpn/outline"
	"github.com/usipipo/usipipo/vpn/wireguard"
)

// closer is a data plane's shutdown.
type closer interface{ Close() error }

// dataPlanes starts the node's data planes on sockets from the listener
// registry: WireGuard on --wg-listen, Outline on --ss-listen (TCP and UDP),
// the MTProto proxy on --mtproto-listen. Each registers its Close.
func dataPlanes(n *Node, stops *[]func(context.Context)) ([]plane.Plane, error) {
	cfg := n.Config
	var out []plane.Plane
	add := func(p plane.Plane, c closer) {
		out = append(out, p)
		*stops = append(*stops, func(context.Context) { c.Close() })
	}
	wg, err := n.wireguard()
	if err != nil {
		return nil, err
	}
	add(wg, wg)
	ssTCP, err := n.Listen.Listen("tcp", cfg.SSListen)
	if err != nil {
		return nil, fmt.Errorf("--ss-listen %s (tcp): %w", cfg.SSListen, err)
	}
	n.bound.add("outline", "tcp", "--ss-listen", cfg.SSListen, ssTCP.Addr())
	ssUDP, err := n.Listen.ListenPacket("udp", cfg.SSListen)
	if err != nil {
		return nil, fmt.Errorf("--ss-listen %s (udp): %w", cfg.SSListen, err)
	}
	n.bound.add("outline", "udp", "--ss-listen", cfg.SSListen, ssUDP.LocalAddr())
	ss, err := outline.New(outline.Options{Listener: ssTCP, PacketConn: ssUDP, Egress: n.Egress,
		Log: logging.ForService(n.Log, "outline"), Metrics: n.Metrics})
	if err != nil {
		return nil, fmt.Errorf("starting outline: %w", err)
	}
	add(ss, ss)
	mtLn, err := n.Listen.Listen("tcp", cfg.MTProtoListen)
	if err != nil {
		return nil, fmt.Errorf("--mtproto-listen %s: %w", cfg.MTProtoListen, err)
	}
	n.bound.add("mtproto", "tcp", "--mtproto-listen", cfg.MTProtoListen, mtLn.Addr())
	n.Service.ProxySecrets().Log(logging.ForService(n.Log, "mtproto")) // ee or dd links, and why
	dcs := mtproto.DefaultDCs()
	maps.Copy(dcs, cfg.MTProtoDC)
	mt, err := mtproto.New(mtproto.Options{Listener: mtLn, Dial: n.Egress.DialFor, CloakDomain: n.Service.CloakDomain(),
		DCs: dcs, Log: logging.ForService(n.Log, "mtproto"), Metrics: n.Metrics, FrontAddr: n.publicFront(), FastMode: cfg.MTProtoFast})
	if err != nil {
		return nil, fmt.Errorf("starting mtproto: %w", err)
	}
	add(mt, mt)
	return out, nil
}

func (n *Node) wireguard() (*wireguard.Server, error) {
	cfg := n.Config
	mode, why, err := wgMode(cfg.WGMode)
	if err != nil {
		return nil, err
	}
	conn, err := n.Listen.ListenPacket("udp", cfg.WGListen)
	if err != nil {
		return nil, fmt.Errorf("--wg-listen %s: %w", cfg.WGListen, err)
	}
	n.bound.add("wireguard", "udp", "--wg-listen", cfg.WGListen, conn.LocalAddr())
	s, err := wireguard.New(wireguard.Options{PrivateKey: n.sec.wgPriv, Conn: conn, Egress: n.Egress,
		PoolV4: cfg.WGV4Pool, PoolV6: cfg.WGV6Pool, Logger: logging.ForService(n.Log, "wireguard"), Metrics: n.Metrics,
		Mode: mode, Iface: cfg.WGIface})
	if err != nil {
		return nil, fmt.Errorf("starting wireguard (%s mode): %w", mode, err)
	}
	n.Log.Info("wireguard_mode", "mode", mode.String(), "details", why)
	return s, nil
}

// wgMode resolves --wg-mode: auto is tun when this process may create a
// TUN interface and tun mode's other needs are met, else netstack; tun
// refuses when impossible. why is the reason, for the log.
func wgMode(setting string) (wireguard.Mode, string, error) {
	switch setting {
	case config.WGModeNetstack:
		return wireguard.ModeNetstack, "userspace exit node, no privileges needed (--wg-mode netstack)", nil
	case config.WGModeTUN:
		if err := wireguard.CheckTUN().Err(); err != nil {
			return 0, "", fmt.Errorf("--wg-mode tun: %w (`usipipo doctor` says what is missing; or use --wg-mode netstack)", err)
		}
		return wireguard.ModeTUN, "kernel TUN interface (--wg-mode tun)", nil
	}
	c := wireguard.CheckTUN()
	if err := c.CanCreateTUN(); err != nil {
		return wireguard.ModeNetstack, "auto: netstack, since no TUN interface can be created: " + err.Error(), nil
	}
	if err := c.Err(); err != nil {
		return wireguard.ModeNetstack, "auto: netstack, since tun mode cannot start: " + err.Error(), nil
	}
	return wireguard.ModeTUN, "auto: tun, since this process may create a TUN interface (CAP_NET_ADMIN, /dev/net/tun) and nft or iptables is present", nil
}
