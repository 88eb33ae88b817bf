package app

import (
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
)

// allocate picks a random free IPv4 and IPv6 tunnel address from the pools.
// The store's address index makes the choice collision-free: apply refuses an
// address in use, and CreateKey retries with another.
func (s *Service) allocate() (string, string, error) {
	v4, err := s.pick(s.pool4)
	if err != nil {
		return "", "", err
	}
	v6, err := s.pick(s.pool6)
	if err != nil {
		return "", "", err
	}
	return v4.String(), v6.String(), nil
}

// pick returns a random host address of p, never the network address, the
// gateway (.1, the node's own tunnel address) or an IPv4 broadcast address,
// and one the store does not hold.
func (s *Service) pick(p netip.Prefix) (netip.Addr, error) {
	p = p.Masked()
	bits := p.Addr().BitLen() - p.Bits()
	if bits < 2 {
		return netip.Addr{}, fmt.Errorf("pool %s is too small", p)
	}
	hostBits := min(bits, 62)
	for range 64 {
		var b [8]byte
		if _, err := io.ReadFull(s.rand, b[:]); err != nil {
			return netip.Addr{}, err
		}
		n := binary.BigEndian.Uint64(b[:]) & (1<<hostBits - 1)
		if n < 2 || (p.Addr().Is4() && n == 1<<hostBits-1) {
			continue
		}
		a := offset(p.Addr(), n)
		if !s.st.AddressInUse(a.String()) {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("no free address in %s", p)
}

func offset(base netip.Addr, n uint64) netip.Addr {
	b := base.As16()
	lo := binary.BigEndian.Uint64(b[8:]) + n
	binary.BigEndian.PutUint64(b[8:], lo)
	a := netip.AddrFrom16(b)
	if base.Is4() {
		return a.Unmap()
	}
	return a
}

// Gateway is the node's own tunnel address in a pool (the first host).
func Gateway(p netip.Prefix) netip.Addr { return offset(p.Masked().Addr(), 1) }
