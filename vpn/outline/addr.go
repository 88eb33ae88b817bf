package outline

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
)

// SOCKS5 address types used by the Shadowsocks target header.
const (
	atypIPv4   = 1
	atypDomain = 3
	atypIPv6   = 4
)

var errShortAddr = errors.New("outline: address header is truncated")

// Addr is a target address: either IP (netip) or a domain name with a port.
type Addr struct {
	IP   netip.AddrPort // valid when Host is empty
	Host string
	Port uint16
}

// String formats the address for a dialer ("host:port").
func (a Addr) String() string {
	if a.Host != "" {
		return net.JoinHostPort(a.Host, strconv.Itoa(int(a.Port)))
	}
	return a.IP.String()
}

// ParseAddr reads a SOCKS address at the start of b and returns it with its
// encoded length. A domain must be 1..255 bytes without NULs: a NUL would
// reach the resolver as a different name than the one checked.
func ParseAddr(b []byte) (Addr, int, error) {
	if len(b) < 1 {
		return Addr{}, 0, errShortAddr
	}
	switch b[0] {
	case atypIPv4:
		if len(b) < 1+4+2 {
			return Addr{}, 0, errShortAddr
		}
		ip := netip.AddrFrom4([4]byte(b[1:5]))
		return Addr{IP: netip.AddrPortFrom(ip, binary.BigEndian.Uint16(b[5:7]))}, 7, nil
	case atypIPv6:
		if len(b) < 1+16+2 {
			return Addr{}, 0, errShortAddr
		}
		ip := netip.AddrFrom16([16]byte(b[1:17])).Unmap()
		return Addr{IP: netip.AddrPortFrom(ip, binary.BigEndian.Uint16(b[17:19]))}, 19, nil
	case atypDomain:
		if len(b) < 2 {
			return Addr{}, 0, errShortAddr
		}
		n := int(b[1])
		if len(b) < 2+n+2 {
			return Addr{}, 0, errShortAddr
		}
		if n == 0 {
			return Addr{}, 0, errors.New("outline: empty domain in address header")
		}
		host := string(b[2 : 2+n])
		for i := 0; i < len(host); i++ {
			if host[i] == 0 {
				return Addr{}, 0, errors.New("outline: NUL in domain of address header")
			}
		}
		port := binary.BigEndian.Uint16(b[2+n : 4+n])
		// A literal written as a name is an IP: judge it as one.
		if ip, err := netip.ParseAddr(host); err == nil {
			if ip.Zone() != "" {
				return Addr{}, 0, errors.New("outline: zoned address in address header")
			}
			return Addr{IP: netip.AddrPortFrom(ip.Unmap(), port)}, 4 + n, nil
		}
		return Addr{Host: host, Port: port}, 4 + n, nil
	default:
		return Addr{}, 0, fmt.Errorf("outline: address type %d not supported", b[0])
	}
}

// AppendAddr appends the SOCKS encoding of a to b.
func AppendAddr(b []byte, a Addr) []byte {
	if a.Host != "" {
		h := a.Host
		if len(h) > 255 {
			h = h[:255]
		}
		b = append(b, atypDomain, byte(len(h)))
		b = append(b, h...)
		return binary.BigEndian.AppendUint16(b, a.Port)
	}
	ip := a.IP.Addr().Unmap()
	if ip.Is4() {
		b = append(b, atypIPv4)
		b = append(b, ip.AsSlice()...)
	} else {
		b = append(b, atypIPv6)
		s := ip.As16()
		b = append(b, s[:]...)
	}
	return binary.BigEndian.AppendUint16(b, a.IP.Port())
}
