package egress

import (
	"encoding/binary"
	"net/netip"
	"slices"
)

// reason is the internal form of a verdict; allowed is the zero value.
type reason uint8

const (
	allowed reason = iota
	rInvalid
	rDeny
	rMail
	rOwn
	rLoopback
	rPrivate
	rLinkLocal
	rMulticast
	rReserved
	rRateLimit
	numReasons
)

var reasonNames = [numReasons]string{
	allowed:    "",
	rInvalid:   ReasonInvalid,
	rDeny:      ReasonDeny,
	rMail:      ReasonMail,
	rOwn:       ReasonOwn,
	rLoopback:  ReasonLoopback,
	rPrivate:   ReasonPrivate,
	rLinkLocal: ReasonLinkLocal,
	rMulticast: ReasonMulticast,
	rReserved:  ReasonReserved,
	rRateLimit: ReasonRateLimit,
}

func (r reason) String() string { return reasonNames[r] }

// denyRange is one default-deny range and the reason it gives.
type denyRange struct {
	prefix string
	reason reason
}

// defaultDeny lists the default-deny ranges; see the package doc. They are
// compiled into masks (rules) because Check runs per datagram in UDP relays.
var (
	defaultDeny = []denyRange{
		{"0.0.0.0/8", rReserved},
		{"10.0.0.0/8", rPrivate},
		{"100.64.0.0/10", rPrivate},
		{"127.0.0.0/8", rLoopback},
		{"169.254.0.0/16", rLinkLocal},
		{"172.16.0.0/12", rPrivate},
		{"192.0.0.0/24", rReserved},
		{"192.0.2.0/24", rReserved},
		{"192.168.0.0/16", rPrivate},
		{"198.18.0.0/15", rReserved},
		{"198.51.100.0/24", rReserved},
		{"203.0.113.0/24", rReserved},
		{"224.0.0.0/4", rMulticast},
		{"240.0.0.0/4", rReserved},
		{"::/128", rReserved},
		{"::1/128", rLoopback},
		{"fc00::/7", rPrivate},
		{"fe80::/10", rLinkLocal},
		{"ff00::/8", rMulticast},
		{"2001:db8::/32", rReserved},
		{"3fff::/20", rReserved},
		{"64:ff9b:1::/48", rReserved},
	}
	rules = compileRules(defaultDeny)
)

// u128 is an address as a 128-bit number, IPv4 in its IPv4-mapped form.
type u128 struct{ hi, lo uint64 }

func toU128(a netip.Addr) u128 {
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// mapped4 returns IPv4 address v4 in IPv4-mapped form.
func mapped4(v4 uint32) u128 { return u128{0, 0xffff<<32 | uint64(v4)} }

func (x u128) less(y u128) bool { return x.hi < y.hi || x.hi == y.hi && x.lo < y.lo }

// rule matches x when x&mask == net.
type rule struct {
	net, mask u128
	reason    reason
}

// compileRules turns ranges into rules; an IPv4 range matches the IPv4 and
// the IPv4-mapped forms of its addresses.
func compileRules(ranges []denyRange) []rule {
	out := make([]rule, 0, len(ranges))
	for _, r := range ranges {
		p := netip.MustParsePrefix(r.prefix).Masked()
		bits := p.Bits()
		if p.Addr().Is4() {
			bits += 96
		}
		mask := u128{^uint64(0), ^uint64(0)}
		if bits <= 64 {
			mask = u128{^(^uint64(0) >> bits), 0}
		} else {
			mask.lo = ^(^uint64(0) >> (bits - 64))
		}
		out = append(out, rule{net: toU128(p.Addr()), mask: mask, reason: r.reason})
	}
	return out
}

// defaultReason judges an address against the default ranges alone.
func defaultReason(x u128) reason {
	for _, r := range rules {
		if x.hi&r.mask.hi == r.net.hi && x.lo&r.mask.lo == r.net.lo {
			return r.reason
		}
	}
	return allowed
}

// embeddedIPv4 returns the IPv4 address carried by IPv6 address x in the
// IPv4-mapped, IPv4-compatible, IPv4-translated, NAT64 (64:ff9b::/96) or 6to4
// (2002::/16) forms.
func embeddedIPv4(x u128) (uint32, bool) {
	mid := uint32(x.lo >> 32)
	switch {
	case x.hi == 0 && (mid == 0xffff || mid == 0 || mid == 0xffff0000),
		x.hi == 0x0064ff9b00000000 && mid == 0:
		// ::ffff:a.b.c.d, ::a.b.c.d, ::ffff:0:a.b.c.d, 64:ff9b::a.b.c.d
		return uint32(x.lo), true
	case x.hi>>48 == 0x2002:
		return uint32(x.hi >> 16), true
	}
	return 0, false
}

// isMailPort reports whether port is an SMTP, SMTPS or submission port.
func isMailPort(port uint16) bool { return port == 25 || port == 465 || port == 587 }

// matchAny reports whether a, or its embedded IPv4 form v4 when has4, is in one
// of the prefixes.
func matchAny(prefixes []netip.Prefix, a, v4 netip.Addr, has4 bool) bool {
	for _, p := range prefixes {
		if p.Contains(a) || has4 && p.Contains(v4) {
			return true
		}
	}
	return false
}

// judge applies the whole policy to ap; see the package doc for the order.
func (d *Dialer) judge(ap netip.AddrPort) reason {
	a := ap.Addr()
	if !a.IsValid() || ap.Port() == 0 {
		return rInvalid
	}
	if a.Zone() != "" {
		a = a.WithZone("")
	}
	x := toU128(a)
	var v4 uint32
	has4 := false
	if a.Is6() {
		v4, has4 = embeddedIPv4(x)
	}
	if len(d.deny) > 0 || len(d.allow) > 0 {
		a4 := netip.AddrFrom4([4]byte{byte(v4 >> 24), byte(v4 >> 16), byte(v4 >> 8), byte(v4)})
		if matchAny(d.deny, a, a4, has4) {
			return rDeny
		}
		if !d.allowMail && isMailPort(ap.Port()) {
			return rMail
		}
		if matchAny(d.allow, a, a4, has4) {
			return allowed
		}
	} else if !d.allowMail && isMailPort(ap.Port()) {
		return rMail
	}
	own := d.own.Load()
	if own.contains(x) || has4 && own.contains(mapped4(v4)) {
		return rOwn
	}
	if r := defaultReason(x); r != allowed || !has4 {
		return r
	}
	return defaultReason(mapped4(v4))
}

// normalizePrefix makes a user prefix match what judge compares: masked, no
// zone, and an IPv4-mapped prefix of /96 or longer turned into its IPv4 prefix.
func normalizePrefix(p netip.Prefix) netip.Prefix {
	a := p.Addr().WithZone("")
	if a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96).Masked()
	}
	return netip.PrefixFrom(a, p.Bits()).Masked()
}

// addrSet is a sorted set of addresses, so that a lookup neither hashes nor
// allocates. An IPv4 address and its IPv4-mapped form are the same member.
type addrSet []u128

func newAddrSet(addrs []netip.Addr) *addrSet {
	s := make(addrSet, 0, len(addrs))
	for _, a := range addrs {
		s = append(s, toU128(a))
	}
	slices.SortFunc(s, func(x, y u128) int {
		switch {
		case x.less(y):
			return -1
		case y.less(x):
			return 1
		}
		return 0
	})
	s = slices.Compact(s)
	return &s
}

func (s *addrSet) contains(x u128) bool {
	lo, hi := 0, len(*s)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if (*s)[m].less(x) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo < len(*s) && (*s)[lo] == x
}
