package egress

import (
	"net/netip"
	"slices"
)

// Rules is the policy in the form a packet filter can express: WireGuard's
// tun mode installs it as firewall rules, since its flows never reach a
// Dialer. The precedence is the package doc's: Deny, then the mail ports
// (unless AllowMail), then Allow, then Own and Default.
type Rules struct {
	Deny, Allow []netip.Prefix // normalised (IPv4-mapped prefixes as IPv4)
	AllowMail   bool
	Own         []netip.Addr   // the node's addresses as of the last Refresh
	Default     []netip.Prefix // the default deny ranges
	// FlowsPerSecond and FlowBurst are the per-credential new-flow limit; 0
	// means unlimited.
	FlowsPerSecond float64
	FlowBurst      int
}

// Rules returns the policy in force, for firewall rules.
func (d *Dialer) Rules() Rules {
	r := Rules{Deny: slices.Clone(d.deny), Allow: slices.Clone(d.allow), AllowMail: d.allowMail}
	for _, x := range *d.own.Load() {
		var b [16]byte
		for i := range 8 {
			b[i] = byte(x.hi >> (56 - 8*i))
			b[8+i] = byte(x.lo >> (56 - 8*i))
		}
		r.Own = append(r.Own, netip.AddrFrom16(b).Unmap())
	}
	for _, dr := range defaultDeny {
		r.Default = append(r.Default, netip.MustParsePrefix(dr.prefix))
	}
	if d.flows != nil {
		r.FlowsPerSecond, r.FlowBurst = float64(d.flows.limit), d.flows.burst
	}
	return r
}
