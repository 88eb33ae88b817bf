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
//     app.Gateway) on port 53 are answered with Options.Resolver (A and
//     AAAA; other types get an empty answer).
//   - ICMP echo: the gVisor stack answers it (the gateway addresses are its
//     own; other destinations too, since the NIC is promiscuous).
//   - Isolation: flows towards the tunnel pools are refused, so peers cannot
//     reach each other or anything but DNS on the gateway.
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
// stays on at that speed. SpeedBps is a token bucket per direction in the
// forwarders (TCP waits, UDP drops). MaxConns bounds the open flows.
//
// Counters are the device's per-peer rx/tx bytes plus what earlier installs
// of the same credential counted in this Server's life, so they never
// decrease within an Epoch; a new Server is a new Epoch. Distinct endpoint
// addresses seen per peer over Options.SourceWindow reveal shared keys.
package wireguard
