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
	ssUDP, err := n.Listen.ListenPacket("udp", cfg.SSListen)
	if err != nil {
		return nil, fmt.Errorf("--ss-listen %s (udp): %w", cfg.SSListen, err)
	}
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
	dcs := mtproto.DefaultDCs()
	maps.Copy(dcs, cfg.MTProtoDC)
	mt, err := mtproto.New(mtproto.Options{Listener: mtLn, Dial: n.Egress.DialFor, CloakDomain: n.Service.CloakDomain(),
		DCs: dcs, Log: logging.ForService(n.Log, "mtproto"), Metrics: n.Metrics})
	if err != nil {
		return nil, fmt.Errorf("starting mtproto: %w", err)
	}
	add(mt, mt)
	return out, nil
}

func (n *Node) wireguard() (*wireguard.Server, error) {
	cfg := n.Config
	if cfg.WGMode == config.WGModeTUN {
		return nil, fmt.Errorf("--wg-mode tun: this build serves WireGuard in netstack mode only; use auto or netstack")
	}
	conn, err := n.Listen.ListenPacket("udp", cfg.WGListen)
	if err != nil {
		return nil, fmt.Errorf("--wg-listen %s: %w", cfg.WGListen, err)
	}
	s, err := wireguard.New(wireguard.Options{PrivateKey: n.sec.wgPriv, Conn: conn, Egress: n.Egress,
		PoolV4: cfg.WGV4Pool, PoolV6: cfg.WGV6Pool, Logger: logging.ForService(n.Log, "wireguard"), Metrics: n.Metrics})
	if err != nil {
		return nil, fmt.Errorf("starting wireguard: %w", err)
	}
	n.Log.Info("wireguard_mode", "mode", "netstack", "details", "userspace exit node, no privileges needed")
	return s, nil
}
