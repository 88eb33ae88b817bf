package wireguard

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/usipipo/usipipo/app/egress"
)

// fwTable is the one nftables table tun mode owns (family inet: one
// ruleset for IPv4 and IPv6). Nothing else of the host's firewall is
// touched.
const fwTable = "usipipo"

// Named counters of refused packets, read back into
// usipipo_wireguard_refused_flows_total by reason. Each dropped packet of a
// new flow counts: a client retransmitting its SYN counts again.
var fwCounters = map[string]string{"refused_egress": refusedEgress, "refused_peer": refusedPeers, "refused_conns": refusedConns}

// fwSpec is everything the ruleset depends on.
type fwSpec struct {
	iface        string
	pool4, pool6 netip.Prefix
	gw4, gw6     netip.Addr
	out4, out6   []string // default-route interfaces, where peers' traffic is masqueraded
	policy       egress.Rules
}

// ruleset renders the nft script that replaces the table atomically: the
// leading add-then-delete makes the one transaction both create the table
// and drop a previous one, so a restart never duplicates rules.
func (f fwSpec) ruleset() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("table inet %s", fwTable)
	w("delete table inet %s", fwTable)
	w("table inet %s {", fwTable)
	for _, c := range sortedKeys(fwCounters) {
		w("\tcounter %s { }", c)
	}
	f.sets(w)
	ifq := strconv.Quote(f.iface)
	w("\tchain forward {")
	w("\t\ttype filter hook forward priority filter; policy accept;")
	w("\t\tiifname %s tcp flags syn / syn,rst tcp option maxseg size set rt mtu", ifq)
	w("\t\toifname %s tcp flags syn / syn,rst tcp option maxseg size set rt mtu", ifq)
	w("\t\tiifname %s goto from_peers", ifq)
	w("\t\toifname %s goto to_peers", ifq)
	w("\t}")
	// Nothing from outside opens a flow towards a peer.
	w("\tchain to_peers {")
	w("\t\tct state established,related accept")
	w("\t\tdrop")
	w("\t}")
	w("\tchain from_peers {")
	w("\t\toifname %s counter name refused_peer drop", ifq)
	w("\t\tct state established,related accept")
	w("\t\tct state invalid drop")
	w("\t\tip daddr %s counter name refused_peer drop", f.pool4)
	w("\t\tip6 daddr %s counter name refused_peer drop", f.pool6)
	f.policyRules(w, "goto admit")
	w("\t\tip daddr @own4 counter name refused_egress drop")
	w("\t\tip6 daddr @own6 counter name refused_egress drop")
	w("\t\tip daddr @default4 counter name refused_egress drop")
	w("\t\tip6 daddr @default6 counter name refused_egress drop")
	w("\t\tgoto admit")
	w("\t}")
	f.admit(w)
	f.input(w, ifq)
	w("\tchain postrouting {")
	w("\t\ttype nat hook postrouting priority srcnat; policy accept;")
	if len(f.out4) > 0 {
		w("\t\tip saddr %s oifname { %s } masquerade", f.pool4, quoteAll(f.out4))
	}
	if len(f.out6) > 0 {
		w("\t\tip6 saddr %s oifname { %s } masquerade", f.pool6, quoteAll(f.out6))
	}
	w("\t}")
	w("}")
	return b.String()
}

// policyRules are the egress precedence's first steps: Deny, the mail
// ports, then Allow (which jumps to then).
func (f fwSpec) policyRules(w func(string, ...any), then string) {
	w("\t\tip daddr @deny4 counter name refused_egress drop")
	w("\t\tip6 daddr @deny6 counter name refused_egress drop")
	if !f.policy.AllowMail {
		w("\t\tmeta l4proto { tcp, udp } th dport { 25, 465, 587 } counter name refused_egress drop")
	}
	w("\t\tip daddr @allow4 %s", then)
	w("\t\tip6 daddr @allow6 %s", then)
}

// admit applies the per-credential new-flow limit (per peer address, as
// the egress dialer's is per credential) and accepts.
func (f fwSpec) admit(w func(string, ...any)) {
	w("\tchain conns {") // filled by nftConnLimits
	w("\t}")
	w("\tchain admit {")
	w("\t\tct state new jump conns")
	if r := f.policy.FlowsPerSecond; r > 0 {
		rate, burst := max(int(r), 1), max(f.policy.FlowBurst, 1)
		w("\t\tct state new update @flows4 { ip saddr limit rate over %d/second burst %d packets } counter name refused_egress drop", rate, burst)
		w("\t\tct state new update @flows6 { ip6 saddr limit rate over %d/second burst %d packets } counter name refused_egress drop", rate, burst)
	}
	w("\t\taccept")
	w("\t}")
}

// input guards the node itself from its peers: the gateway answers DNS
// (UDP and TCP) and ping; the rest of the node is one of its own addresses, refused unless
// --egress-allow lets it.
func (f fwSpec) input(w func(string, ...any), ifq string) {
	w("\tchain input {")
	w("\t\ttype filter hook input priority filter; policy accept;")
	w("\t\tiifname %s goto peers_in", ifq)
	w("\t}")
	w("\tchain peers_in {")
	w("\t\tct state established,related accept")
	w("\t\tip daddr %s meta l4proto { tcp, udp } th dport 53 accept", f.gw4)
	w("\t\tip6 daddr %s meta l4proto { tcp, udp } th dport 53 accept", f.gw6)
	w("\t\tip daddr %s icmp type echo-request accept", f.gw4)
	w("\t\tip6 daddr %s icmpv6 type echo-request accept", f.gw6)
	w("\t\tip daddr %s counter name refused_peer drop", f.pool4)
	w("\t\tip6 daddr %s counter name refused_peer drop", f.pool6)
	f.policyRules(w, "accept")
	w("\t\tcounter name refused_egress drop")
	w("\t}")
}

// sets declares the address sets of the policy.
func (f fwSpec) sets(w func(string, ...any)) {
	p := f.policy
	def := append(append([]netip.Prefix(nil), p.Default...), embedded(p.Default)...)
	own := ownPrefixes(p.Own, def)
	for _, s := range []struct {
		name     string
		prefixes []netip.Prefix
	}{{"deny", p.Deny}, {"allow", p.Allow}, {"own", own}, {"default", def}} {
		v4, v6 := split(s.prefixes)
		w("\tset %s4 { type ipv4_addr; flags interval; auto-merge;%s }", s.name, elements(v4))
		w("\tset %s6 { type ipv6_addr; flags interval; auto-merge;%s }", s.name, elements(v6))
	}
	if f.policy.FlowsPerSecond > 0 {
		w("\tset flows4 { type ipv4_addr; size 65535; flags dynamic,timeout; timeout 1m; }")
		w("\tset flows6 { type ipv6_addr; size 65535; flags dynamic,timeout; timeout 1m; }")
	}
}

// embedded are the IPv6 forms that carry an IPv4 range (IPv4-mapped,
// -compatible, -translated, NAT64 and 6to4), which the egress dialer judges
// as the IPv4 address they carry.
func embedded(ps []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range ps {
		if !p.Addr().Is4() {
			continue
		}
		v4 := p.Addr().As4()
		for _, head := range [][12]byte{
			{10: 0xff, 11: 0xff},              // ::ffff:a.b.c.d
			{},                                // ::a.b.c.d
			{8: 0xff, 9: 0xff},                // ::ffff:0:a.b.c.d
			{0: 0, 1: 0x64, 2: 0xff, 3: 0x9b}, // 64:ff9b::a.b.c.d
		} {
			var b [16]byte
			copy(b[:12], head[:])
			copy(b[12:], v4[:])
			out = append(out, netip.PrefixFrom(netip.AddrFrom16(b), 96+p.Bits()).Masked())
		}
		var b [16]byte
		b[0], b[1] = 0x20, 0x02 // 2002:aabb:ccdd::/48, 6to4
		copy(b[2:6], v4[:])
		out = append(out, netip.PrefixFrom(netip.AddrFrom16(b), 16+p.Bits()).Masked())
	}
	return out
}

func split(ps []netip.Prefix) (v4, v6 []netip.Prefix) {
	for _, p := range ps {
		if p.Addr().Is4() {
			v4 = append(v4, p.Masked())
		} else {
			v6 = append(v6, p.Masked())
		}
	}
	return v4, v6
}

// ownPrefixes are the node's addresses as host prefixes, less those inside
// a default range (loopback, link-local), which that range refuses at the
// same step already.
func ownPrefixes(addrs []netip.Addr, def []netip.Prefix) []netip.Prefix {
	var own []netip.Prefix
	for _, a := range addrs {
		if !slices.ContainsFunc(def, func(d netip.Prefix) bool { return d.Contains(a) }) {
			own = append(own, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return own
}

// mergePrefixes leaves out prefixes inside another: nft refuses
// overlapping intervals in one set, and iptables needs no second rule.
func mergePrefixes(ps []netip.Prefix) []netip.Prefix {
	ps = slices.Clone(ps)
	slices.SortStableFunc(ps, func(a, b netip.Prefix) int { return a.Bits() - b.Bits() })
	var keep []netip.Prefix
	for _, p := range ps {
		if !slices.ContainsFunc(keep, func(k netip.Prefix) bool { return k.Overlaps(p) }) {
			keep = append(keep, p)
		}
	}
	return keep
}

// elements lists a set's prefixes.
func elements(ps []netip.Prefix) string {
	keep := mergePrefixes(ps)
	if len(keep) == 0 {
		return ""
	}
	s := make([]string, len(keep))
	for i, p := range keep {
		s[i] = p.String()
	}
	return " elements = { " + strings.Join(s, ", ") + " };"
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
