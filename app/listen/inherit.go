package listen

import (
	"net"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Matching passed sockets to the (network, address) a caller asks for.

func sockKey(f *os.File) key {
	rc, err := f.SyscallConn()
	if err != nil {
		return key{}
	}
	var (
		sa    unix.Sockaddr
		typ   int
		serr  error
		tyerr error
	)
	if err := rc.Control(func(fd uintptr) {
		sa, serr = unix.Getsockname(int(fd))
		typ, tyerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TYPE)
	}); err != nil || serr != nil || tyerr != nil {
		return key{}
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return inetKey(typ, net.IP(sa.Addr[:]), sa.Port, "")
	case *unix.SockaddrInet6:
		zone := ""
		if sa.ZoneId != 0 {
			if ifi, err := net.InterfaceByIndex(int(sa.ZoneId)); err == nil {
				zone = ifi.Name
			}
		}
		return inetKey(typ, net.IP(sa.Addr[:]), sa.Port, zone)
	case *unix.SockaddrUnix:
		switch typ {
		case unix.SOCK_STREAM:
			return key{"unix", sa.Name}
		case unix.SOCK_SEQPACKET:
			return key{"unixpacket", sa.Name}
		case unix.SOCK_DGRAM:
			return key{"unixgram", sa.Name}
		}
	}
	return key{}
}

func inetKey(typ int, ip net.IP, port int, zone string) key {
	host := ip.String()
	if zone != "" {
		host += "%" + zone
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	switch typ {
	case unix.SOCK_STREAM:
		return key{"tcp", addr}
	case unix.SOCK_DGRAM:
		return key{"udp", addr}
	}
	return key{}
}

// matchesAddr reports whether a request for k may claim a passed socket
// whose actual address is have.
func matchesAddr(k, have key) bool {
	if have.network == "" {
		return false
	}
	switch k.network {
	case "tcp", "tcp4", "tcp6":
		if have.network != "tcp" {
			return false
		}
	case "udp", "udp4", "udp6":
		if have.network != "udp" {
			return false
		}
	default:
		return k.network == have.network && k.addr == have.addr
	}
	want, err := net.ResolveTCPAddr("tcp", k.addr) // same syntax for udp
	if err != nil || want.Port == 0 {
		return false // ":0" cannot identify a socket
	}
	got, err := net.ResolveTCPAddr("tcp", have.addr)
	if err != nil {
		return false
	}
	if want.Port != got.Port || want.Zone != got.Zone {
		return false
	}
	if want.IP == nil || want.IP.IsUnspecified() {
		return got.IP == nil || got.IP.IsUnspecified()
	}
	return want.IP.Equal(got.IP)
}

// claim removes and returns the passed descriptor for k, if any. r.mu held.
