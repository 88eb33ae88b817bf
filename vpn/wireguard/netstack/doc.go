// Package netstack is a userspace network for the WireGuard device: a
// tun.Device whose packets enter and leave a gVisor stack through a link
// endpoint of its own.
//
// wireguard-go's tun/netstack keeps its gVisor stack unexported and moves one
// packet per call through the stock channel.Endpoint, which drops packets
// when its queue is full. This package differs in two ways that matter for an
// exit node:
//
//   - The Stack is exported, so the server attaches TCP and UDP forwarders to
//     it and terminates every flow of every peer (the NIC is promiscuous and
//     spoofing: it accepts packets to any address and answers from any).
//   - The Endpoint is batched and blocking. The stack's WritePackets parks
//     when the queue toward WireGuard is full instead of dropping (TCP sees
//     backpressure, not loss), and the device's Read drains up to its batch
//     size of packets per call, copying each straight into WireGuard's buffer.
//
// Offloads: the endpoint claims host GSO (HostGSOSupported, 64 KiB), so
// TCP hands it one large packet per send with its headers written once and
// the checksum left partial, and ReadBatch cuts it to the MSS while copying
// it into WireGuard's buffers, as a NIC doing TSO would (segment.go): every
// segment's lengths, sequence number and checksums are set there, and PSH
// stays on the last segment of a run only. A Read's consecutive packets of
// one flow are then re-packed into full-size segments under the newest
// header (join.go), so a Read is a burst of up to ~44 equal segments of a
// flow that wireguard-go encrypts and sends as one UDP GSO message, which
// the client receives as one datagram and writes to its TUN as one
// coalesced segment. Inbound packets go through
// gVisor's GRO, which merges a batch's consecutive segments of a flow
// before TCP sees them. Inbound packets are handed to the stack
// synchronously from Write with receive-checksum offload: WireGuard already
// authenticated them. Only the gateway addresses answer ICMP echo.
package netstack
