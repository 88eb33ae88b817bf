package wireguard

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
)

// connLimits is tun mode's MaxConns: the peers' addresses by their limit.
// The firewall refuses a peer's new flow while it has that many open
// (conntrack's count), counted as refused_conns.
type connLimits map[netip.Addr]int

// connLimitsLocked is what the installed peers call for.
func (s *Server) connLimitsLocked() connLimits {
	out := connLimits{}
	for _, p := range s.peers {
		n := int(p.live.maxConns.Load())
		if !p.onDevice && !p.parked || n <= 0 {
			continue
		}
		for _, a := range []netip.Addr{p.v4, p.v6} {
			if a.IsValid() {
				out[a] = n
			}
		}
	}
	return out
}

// syncConnLimitsLocked brings the firewall's limits to the peers' when
// they changed.
func (s *Server) syncConnLimitsLocked(ctx context.Context) error {
	if s.kern == nil {
		return nil
	}
	want := s.connLimitsLocked()
	if maps.Equal(want, s.kern.limits) {
		return nil
	}
	if err := s.kern.fw.limitConns(ctx, s.o.Iface, want); err != nil {
		return fmt.Errorf("wireguard: connection limits: %w", err)
	}
	s.kern.limits = want
	return nil
}

// byLimit groups addresses by limit, both sorted, for stable rules.
func (c connLimits) byLimit() ([]int, map[int][]netip.Addr) {
	groups := map[int][]netip.Addr{}
	for a, n := range c {
		groups[n] = append(groups[n], a)
	}
	limits := slices.Sorted(maps.Keys(groups))
	for _, n := range limits {
		slices.SortFunc(groups[n], netip.Addr.Compare)
	}
	return limits, groups
}

// nftConnLimits renders the conns chain and its sets. Membership sets
// (mcN4, mcN6) are refilled; the counting sets (ccN4, ccN6) are only ever
// added, so the open connections they track survive a change of limits.
func nftConnLimits(c connLimits) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	limits, groups := c.byLimit()
	w("flush chain inet %s conns", fwTable)
	for _, n := range limits {
		v4, v6 := splitAddrs(groups[n])
		for _, fam := range []struct {
			suffix, typ, match string
			addrs              []netip.Addr
		}{{"4", "ipv4_addr", "ip saddr", v4}, {"6", "ipv6_addr", "ip6 saddr", v6}} {
			mc, cc := fmt.Sprintf("mc%d_%s", n, fam.suffix), fmt.Sprintf("cc%d_%s", n, fam.suffix)
			w("add set inet %s %s { type %s; }", fwTable, mc, fam.typ)
			w("flush set inet %s %s", fwTable, mc)
			w("add set inet %s %s { type %s; size 65535; flags dynamic; }", fwTable, cc, fam.typ)
			if len(fam.addrs) == 0 {
				continue
			}
			s := make([]string, len(fam.addrs))
			for i, a := range fam.addrs {
				s[i] = a.String()
			}
			w("add element inet %s %s { %s }", fwTable, mc, strings.Join(s, ", "))
			w("add rule inet %s conns %s @%s ct state new add @%s { %s ct count over %d } counter name refused_conns drop",
				fwTable, fam.match, mc, cc, fam.match, n)
		}
	}
	return b.String()
}

// iptConnLimits renders one family's USIPIPO-CONNS chain: a connlimit
// rule per peer (iptables has no sets without ipset).
func iptConnLimits(c connLimits, v6 bool) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("*filter")
	w(":%s - [0:0]", iptConns)
	bits := 32
	if v6 {
		bits = 128
	}
	limits, groups := c.byLimit()
	for _, n := range limits {
		for _, a := range groups[n] {
			if a.Is6() != v6 {
				continue
			}
			w("-A %s -s %s -m conntrack --ctstate NEW -m connlimit --connlimit-above %d --connlimit-mask %d -j %s",
				iptConns, a, n, bits, iptConnsDrop)
		}
	}
	w("COMMIT")
	return b.String()
}

func splitAddrs(as []netip.Addr) (v4, v6 []netip.Addr) {
	for _, a := range as {
		if a.Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	return v4, v6
}
