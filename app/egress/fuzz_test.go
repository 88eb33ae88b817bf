package egress

import (
	"net"
	"net/netip"
	"testing"
)

// refRanges restates the default-deny ranges for FuzzCheck, independently of
// the tables in policy.go.
var refRanges = prefixes(
	"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
	"172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15",
	"198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
	"::/128", "::1/128", "fc00::/7", "fe80::/10", "ff00::/8", "2001:db8::/32",
	"3fff::/20", "64:ff9b:1::/48",
)

var (
	refLast32 = prefixes("::/96", "::ffff:0:0/96", "::ffff:0:0:0/96", "64:ff9b::/96")
	ref6to4   = netip.MustParsePrefix("2002::/16")
)

// refForms lists a, its unmapped form, and the IPv4 addresses it carries.
func refForms(a netip.Addr) []netip.Addr {
	forms := []netip.Addr{a, a.Unmap()}
	b := a.As16()
	for _, p := range refLast32 {
		if p.Contains(a) {
			forms = append(forms, netip.AddrFrom4([4]byte(b[12:])))
		}
	}
	if ref6to4.Contains(a) {
		forms = append(forms, netip.AddrFrom4([4]byte(b[2:6])))
	}
	return forms
}

// refRefuses says whether the default policy must refuse a:port.
func refRefuses(a netip.Addr, port uint16) bool {
	if port == 0 || port == 25 || port == 465 || port == 587 {
		return true
	}
	for _, f := range refForms(a) {
		for _, p := range refRanges {
			if p.Contains(f) {
				return true
			}
		}
	}
	return false
}

// FuzzCheck: for any 16 bytes (read as IPv6, and their first 4 as IPv4) and port, Check (with no own addresses) refuses
// exactly what the reference refuses — in particular every address in a denied
// range, in its IPv6 form and its unmapped form — and a Deny of the address
// refuses it in every form.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		"::ffff:10.0.0.1", "::ffff:127.0.0.1", "::ffff:8.8.8.8", "::1", "::", "::127.0.0.1",
		"64:ff9b::a9fe:a9fe", "2002:c0a8:101::", "fe80::1", "2606:4700::1111", "3fff::1",
		"::ffff:0:a00:1", "64:ff9b:1::1", "2001:db8::1", "ff02::1",
	} {
		f.Add(netip.MustParseAddr(s).AsSlice(), uint16(443))
	}
	f.Add(make([]byte, 16), uint16(25))
	// Both ends of every range and their outside neighbours, as IPv4 (the
	// first 4 bytes), IPv4-mapped, NAT64 and 6to4, or IPv6.
	for _, p := range refRanges {
		for _, a := range []netip.Addr{p.Addr(), lastAddr(p)} {
			for _, n := range []netip.Addr{a, a.Prev(), a.Next()} {
				if !n.IsValid() {
					continue
				}
				f.Add(n.AsSlice(), uint16(443))
				if n.Is4() {
					b4 := n.As4()
					f.Add(netip.AddrFrom16(n.As16()).AsSlice(), uint16(443))
					f.Add(netip.AddrFrom16([16]byte{0, 0x64, 0xff, 0x9b, 12: b4[0], b4[1], b4[2], b4[3]}).AsSlice(), uint16(443))
					f.Add(netip.AddrFrom16([16]byte{0x20, 0x02, b4[0], b4[1], b4[2], b4[3]}).AsSlice(), uint16(443))
				}
			}
		}
	}
	d := newDialer(f, Options{})
	d.interfaceAddrs = func() ([]net.Addr, error) { return nil, nil }
	if err := d.Refresh(); err != nil {
		f.Fatal(err)
	}
	// deny gets its Deny list set per input; a fuzz worker runs inputs one at a time.
	deny := newDialer(f, Options{AllowMail: true})
	f.Fuzz(func(t *testing.T, raw []byte, port uint16) {
		var b [16]byte
		copy(b[:], raw)
		a6 := netip.AddrFrom16(b)
		// The same bytes read as IPv4 too, in both forms, so that the fuzzer
		// explores the IPv4 space without having to find the ::ffff: prefix.
		a4 := netip.AddrFrom4([4]byte(b[:4]))
		for _, a := range []netip.Addr{a6, a6.Unmap(), a4, netip.AddrFrom16(a4.As16())} {
			want := refRefuses(a, port)
			err := d.Check(netip.AddrPortFrom(a, port))
			if want && err == nil {
				t.Fatalf("%s port %d allowed, but it is in a denied range or port", a, port)
			}
			if !want && err != nil {
				t.Fatalf("%s port %d refused (%v), but the reference allows it", a, port, err)
			}
		}
		if port == 0 {
			return
		}
		u := a6.Unmap()
		deny.deny = []netip.Prefix{normalizePrefix(netip.PrefixFrom(u, u.BitLen()))}
		for _, a := range refForms(a6)[:2] {
			if got := reasonOf(t, deny.Check(netip.AddrPortFrom(a, port))); got != ReasonDeny {
				t.Fatalf("%s with its own /%d denied: %q", a, a.BitLen(), got)
			}
		}
	})
}

// lastAddr returns the last address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
