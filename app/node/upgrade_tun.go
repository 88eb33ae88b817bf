package node

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/usipipo/usipipo/app/plane"
	"github.com/usipipo/usipipo/app/upgrade"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/vpn/wireguard"
)

// In tun mode the successor must create the TUN interface (usipipo0) and
// its firewall table, and the kernel gives an interface name one owner: so
// the old process stops WireGuard when it releases the store, before the
// successor starts its data planes. The UDP socket stays open in both
// processes (the successor inherited it), so the peers' packets queue in
// it meanwhile; the successor starts a handshake with each peer at the
// endpoint handed over with "main". Should the successor fail, this
// process starts WireGuard again on the same socket and does the same.
//
// Flows the kernel forwards for the peers (tun mode NATs them) are
// conntrack entries, which live in the kernel, not in the firewall table
// or the interface: removing and re-adding the table keeps them and their
// NAT bindings, so an in-tunnel TCP connection stalls for the gap and then
// carries on (TestUpgradeTunMode checks that).

// tunHandoff is a tun-mode WireGuard plane stopped at the store's release.
type tunHandoff struct {
	idx   int // in parts.planes
	srv   *wireguard.Server
	final plane.Snapshot            // its last counters
	eps   map[string]netip.AddrPort // where its peers were last heard from
	// residual is what it moved after the last committed batch, for a
	// restart to commit.
	residual []store.UsageDelta
}

// stopTun stops a tun-mode WireGuard plane, keeping what its successor (or
// its own restart) needs: its final counters and its peers' endpoints.
func (n *Node) stopTun(log *slog.Logger, r *parts) {
	for i, p := range r.planes {
		srv, ok := ownPlane(p).(*wireguard.Server)
		if !ok || srv.Mode() != wireguard.ModeTUN {
			continue
		}
		h := &tunHandoff{idx: i, srv: srv}
		var err error
		if h.final, err = srv.Counters(context.Background()); err != nil {
			// The bytes since the last batch then go unbilled: said, not
			// hidden.
			log.Warn("upgrade_tun_counters", "error", err.Error())
			h.final = plane.Snapshot{}
		}
		h.eps = srv.Endpoints()
		srv.Close()
		r.tun = h
		log.Info("upgrade_tun_stopped", "details", fmt.Sprintf("WireGuard's TUN interface and firewall removed for the new process; %d peer endpoints kept", len(h.eps)))
	}
}

// restartTun, after a failed upgrade, starts WireGuard again on the same
// socket; its peers come back with the reopened store's reconcile loop.
// The old plane's usage since the last committed batch is kept for
// resumeTun to commit.
func (n *Node) restartTun(ctx context.Context, log *slog.Logger, r *parts) error {
	h := r.tun
	if h == nil {
		return nil
	}
	srv, err := h.srv.Again()
	if err != nil {
		r.tun = nil
		return fmt.Errorf("starting WireGuard's TUN interface again: %w", err)
	}
	old := r.planes[h.idx]
	final := map[string]plane.Snapshot{}
	if h.final.Epoch != "" {
		final[old.Name()] = h.final
	}
	h.residual = unaccounted(context.WithoutCancel(ctx), []plane.Plane{old}, final)
	r.planes[h.idx] = &usagePlane{Plane: srv}
	r.planeStops = append(r.planeStops, func(context.Context) { srv.Close() })
	log.Warn("upgrade_tun_restarted", "details", "WireGuard's TUN interface and firewall are back")
	return nil
}

// resumeTun, once the store is open again, commits the stopped plane's last
// usage and greets its peers from the new device.
func (n *Node) resumeTun(ctx context.Context, log *slog.Logger, r *parts) {
	h := r.tun
	r.tun = nil
	if h == nil {
		return
	}
	if len(h.residual) > 0 {
		if err := n.commitHandedUsage(ctx, &upgrade.Usage{Start: n.releasedAt, Deltas: h.residual}); err != nil {
			log.Error("upgrade_usage_dropped", "error", err.Error(), "details", fmt.Sprintf("%d WireGuard credentials' last bytes are not counted", len(h.residual)))
		}
	}
	if len(h.eps) > 0 {
		go n.reachPeers(ctx, log, r.planes, h.eps)
	}
}
