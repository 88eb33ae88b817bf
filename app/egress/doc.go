// Package egress is the one outbound dialer of a usipipo node. Every data plane
// (WireGuard exit, Shadowsocks relay, MTProto relay) and every outbound check
// (health checks, Shadowmere fetches) dials through a [Dialer], so tunnelled
// traffic can never reach the node itself, its private networks, or a mail relay.
//
// # Where the policy is applied
//
// A [Dialer] judges the address it is about to connect to, after resolution, in
// the socket's [net.Dialer.Control] hook: a name that resolves (or rebinds) to
// 10.0.0.1 is refused at the socket, never by a separate pre-resolution that an
// attacker-controlled DNS server could answer differently the second time. Literal
// addresses are also judged before dialling, to fail fast. Name resolution itself
// is not subject to the policy: the resolver (often on loopback) is the operator's.
//
// Unconnected UDP relays that send to many targets from one socket call
// [Dialer.Check] (policy only) or [Dialer.CheckFor] (policy plus the
// per-credential new-flow limit) before each send or each new flow.
//
// # The policy
//
// Precedence, highest first:
//
//  1. [Options.Deny] (--egress-deny): refused, reason "deny".
//  2. Mail ports 25, 465 and 587 (TCP and UDP): refused unless [Options.AllowMail].
//  3. [Options.Allow] (--egress-allow): allowed; this overrides 4 and 5.
//  4. The node's own addresses (interface addresses read at [New] and on
//     [Dialer.Refresh], plus [Options.Own]): refused, reason "own".
//  5. The default deny ranges: 0.0.0.0/8, 10/8, 100.64/10, 127/8, 169.254/16,
//     172.16/12, 192.0.0.0/24, 192.0.2.0/24, 192.168/16, 198.18/15,
//     198.51.100/24, 203.0.113/24, 224/4, 240/4; ::/128, ::1/128, fc00::/7,
//     fe80::/10, ff00::/8, 2001:db8::/32, 3fff::/20 (documentation, RFC 9637) and
//     64:ff9b:1::/48 (local-use NAT64, RFC 8215, whose embedding varies).
//
// An IPv6 address that carries an IPv4 address — IPv4-mapped (::ffff:a.b.c.d),
// IPv4-compatible (::a.b.c.d), IPv4-translated (::ffff:0:a.b.c.d), NAT64
// (64:ff9b::/96) and 6to4 (2002::/16) — is judged as both: a rule that matches
// either the IPv6 form or the embedded IPv4 form applies. So ::ffff:10.0.0.1 is
// private, and an Allow of 127.0.0.1/32 also allows ::ffff:127.0.0.1.
// Zones are ignored. Port 0 is refused as "invalid".
//
// Refusals are [*DeniedError] values (errors.Is(err, [ErrDenied])); a credential
// over its new-flow budget gets [ErrRateLimited]. Error strings name the target
// address and nothing else: no client address, no credential id.
//
// # Metrics
//
// With [Options.Metrics] set, the dialer keeps usipipo_egress_flows_total (flows
// opened: successful dials and flows admitted by CheckFor) and
// usipipo_egress_refused_total{reason="..."} with reason one of the Reason
// constants (private, loopback, linklocal, multicast, reserved, own, mail, deny,
// invalid, ratelimit).
package egress
