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
// Offloads: the endpoint claims gVisor GSO (GVisorGSOSupported, 64 KiB), so
// TCP builds one large segment per send and gVisor cuts it to the MSS in
// one pass, writing the packets back to back; inbound packets go through
// gVisor's GRO, which merges a batch's consecutive segments of a flow
// before TCP sees them. Inbound packets are handed to the stack
// synchronously from Write with receive-checksum offload: WireGuard already
// authenticated them. Only the gateway addresses answer ICMP echo.
package netstack
