//go:build linux

package wireguard

import (
	"errors"
	"net"
	"unsafe"

	"golang.org/x/sys/unix"
)

// UDP segmentation offload (UDP_SEGMENT, Linux 4.18+): one sendmsg carries
// many datagrams of one size.
//
// gsoMaxPayload is well under the 65507 bytes a UDP message may carry: the
// device keeps a GSO packet whole only while the packet, link header
// included, is shorter than its gso_max_size (64 KiB by default; see
// gso_features_check). 46 datagrams of 1424 bytes (65504) pass the UDP
// limit but not that one, so the kernel cut every such message into single
// datagrams in software on the way out, and the client received ~1.4
// datagrams per read instead of ~45: measured on a veth, where that alone
// cost the client's wireguard-go a third more CPU per MiB.
const (
	gsoMaxSegments = 64    // the kernel's UDP_MAX_SEGMENTS
	gsoMaxPayload  = 64000 // UDP payload of one message: 65536 less headers, with room
)

// gsoOOBSize holds one UDP_SEGMENT control message (unix.CmsgSpace(2)).
const gsoOOBSize = 32

// gsoSupported asks the socket whether it knows UDP_SEGMENT.
func gsoSupported(c *net.UDPConn) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	ok := false
	rc.Control(func(fd uintptr) {
		_, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT)
		ok = err == nil
	})
	return ok
}

// putGSOSize writes a UDP_SEGMENT control message into b.
func putGSOSize(b []byte, size uint16) []byte {
	b = b[:unix.CmsgSpace(2)]
	clear(b)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level = unix.IPPROTO_UDP
	h.Type = unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	*(*uint16)(unsafe.Pointer(&b[unix.CmsgLen(0)])) = size
	return b
}

// gsoRefused reports the errors of a path that cannot segment (EIO: no
// checksum offload on the way out).
func gsoRefused(err error) bool { return errors.Is(err, unix.EIO) || errors.Is(err, unix.EINVAL) }

// forceBuffers raises the socket's buffers past net.core.[rw]mem_max where
// the process has CAP_NET_ADMIN, as wireguard-go's own bind does.
func forceBuffers(c *net.UDPConn, size int) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size)
		_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, size)
	})
}

// enableGRO turns UDP receive offload on where the kernel can also report
// it (5.12+: getsockopt UDP_GRO); on older kernels it stays off, since a
// socket coalescing unbeknownst to its reader would corrupt datagrams.
func enableGRO(c *net.UDPConn) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	on := false
	rc.Control(func(fd uintptr) {
		v, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO)
		if err != nil {
			return
		}
		if v == 1 || unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO, 1) == nil {
			on = true
		}
	})
	return on
}

// groSize is the segment size a coalesced read reports (0: not coalesced).
func groSize(oob []byte) int {
	for len(oob) >= unix.SizeofCmsghdr {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			return 0
		}
		if h.Level == unix.SOL_UDP && h.Type == unix.UDP_GRO {
			switch {
			case len(data) >= 4:
				return int(*(*int32)(unsafe.Pointer(&data[0])))
			case len(data) >= 2:
				return int(*(*uint16)(unsafe.Pointer(&data[0])))
			}
		}
		oob = rest
	}
	return 0
}
