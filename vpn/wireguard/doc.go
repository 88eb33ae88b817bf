// Package wireguard is the node's WireGuard data plane: a userspace
// wireguard-go device that serves the node's peers as an exit node, plus the
// key material and client configurations (keys.go, clientconf.go) that the
// service layer hands out.
//
// # Netstack mode
//
// [Server] runs golang.zx2c4.com/wireguard/device over a tun.Device of our
// own ([netstack.Device]): decrypted packets enter a gVisor stack whose one
// NIC is promiscuous and spoofing, so every destination is "local". TCP and
// UDP forwarders terminate each flow there and re-dial it from the host
// through the egress dialer ([egress.Dialer.DialFor], keyed by the
// credential that owns the source address), so the egress policy, its
// per-credential flow limit and its refusal counters apply to tunnelled
// traffic. No root is needed.
//
//   - TCP: the host side is dialled before the peer's handshake completes,
//     so a refused or unreachable destination gets a reset. Each direction
//     is copied on its own and a FIN is passed on as a half-close.
//   - UDP: one connected host socket per peer flow, closed after
//     Options.UDPIdle without traffic either way.
//   - DNS: queries to the tunnel gateway (the first host of each pool,
//     app.Gateway) on port 53, over UDP or TCP, are answered with
//     Options.Resolver (A and AAAA; other types get an empty answer).
//   - ICMP echo: the gVisor stack answers it for the gateway addresses
//     only; echo to any other destination is dropped (the promiscuous NIC
//     would otherwise answer for hosts that are down).
//   - Isolation: flows towards the tunnel pools are refused, so peers cannot
//     reach each other or anything but DNS on the gateway.
//
// # Tun mode
//
// With Options.Mode ModeTUN the device reads and writes a kernel TUN
// interface (Options.Iface, usipipo0 by default; wireguard-go's tun with
// its GSO/GRO offloads) that netlink gives the gateway addresses with the
// pools' prefixes, the MTU and link up. The kernel forwards the peers'
// packets; the node installs, in one nftables transaction, table inet
// usipipo (or, where nft is missing, iptables chains USIPIPO-* jumped to
// from FORWARD, INPUT and nat POSTROUTING):
//
//   - masquerade of the pools out of the default-route interfaces;
//   - peers cannot reach each other (anything towards the interface or the
//     pools) and nothing outside opens a flow towards a peer;
//   - the egress policy of the dialer ([egress.Dialer.Rules]) in its
//     precedence: --egress-deny, mail ports, --egress-allow, the node's own
//     addresses, the default ranges with their IPv4-embedding IPv6 forms, and
//     the per-credential new-flow limit (per peer address);
//   - towards the node itself, only DNS (sockets on each gateway, UDP and
//     TCP, answer with Options.Resolver) and ping of the gateway.
//
// Refused packets of new flows are counted by named counters that the loop
// adds to usipipo_wireguard_refused_flows_total. The table replaces any
// leftover of a crashed run (never a second copy) and is removed on Close,
// as the interface is. IPv4 and IPv6 forwarding are switched on where off
// (IPv6 uplinks with accept_ra=1 raised to 2 first) and put back on Close;
// [CheckTUN] says what is missing. Speed limits are a policer on the
// device's packets ([meteredTUN]); MaxConns is the firewall's count of the
// peer's open flows (nft ct count, iptables connlimit), refusals counted as
// max_conns. Counter.Conns is the same count read back from conntrack over
// netlink when the counters are read (conntrack_linux.go: one dump, grouped
// by the peers' tunnel addresses; ended TCP flows, pings and DNS to the
// gateway left out). A peer taken off for good (revoked, suspended, cut)
// has its conntrack entries deleted, so its NAT mappings go with it and the
// far end of an open flow gets a reset at its next packet instead of
// waiting for conntrack's timeouts; a parked peer keeps them, and so does a
// key rotated in place (its addresses stay installed).
//
// # Peers, limits and counters
//
// [Server.Apply] diffs the desired set against the installed peers and sends
// the device one UAPI IpcSet with only the changes (remove=true for peers
// that left, in-place updates for changed PSK or addresses), so unchanged
// peers keep their sessions. A loop reads the device (IpcGet) every
// Options.Interval and enforces each peer's limits by itself: past
// Limits.ExpiresAt or over its Budget (counted from Mark) a peer is taken
// off the device and its flows are closed, or, with Limits.ThrottleBps, it
// stays on at that speed. In netstack mode the forwarders also count what
// they relay against the budget left at the last reading, and the flow that
// spends it wakes the loop at once, so a cap is overshot by what is in
// flight, not by an interval's traffic. SpeedBps is a token bucket per
// direction in the forwarders (TCP waits, UDP drops). MaxConns bounds the
// open flows.
//
// Installed peers without a recent handshake are parked (lazy.go): off
// wireguard-go's device, which holds ~36 KB per peer, until their client's
// next handshake initiation, which the bind recognises (it recovers the
// initiator's key as the responder does) and answers by putting the peer
// back on the device before wireguard-go reads the message. A peer idle for
// Options.ParkAfter (at least 190 s, past any session's life) is parked
// again with its counts kept. Recognising costs an X25519, so initiations
// are sifted first ([sieve]): a wrong mac1 is dropped, each source has its
// own budget besides the overall one, and a source caught sending junk is
// answered with cookies (wireguard-go's defence under load) until it
// proves its address with mac2, so one flooding source neither starves
// the others' wake-ups nor puts the device under load.
//
// A peer put back on the device (restored, renewed) is given the endpoint
// its client was last heard from and the server starts the handshake: the
// client still holds the session the server dropped and would otherwise
// retry only after ~15 s (resume.go). The greeting waits 300 ms and is
// skipped if the client has started a handshake itself meanwhile. An
// initiation from an address the server has just sent one to (a greeting,
// or wireguard-go's own when a packet waits for a peer without a session)
// is dropped at the bind for up to 2 s, so that the client answers the
// server's: two handshakes crossing leave a reconnecting client without a
// session until its retry 5 s later (crossing.go).
//
// Counters are the device's per-peer rx/tx bytes plus what earlier installs
// of the same credential counted in this Server's life, so they never
// decrease within an Epoch; a new Server is a new Epoch. Distinct endpoint
// addresses seen per peer over Options.SourceWindow reveal shared keys.
package wireguard
