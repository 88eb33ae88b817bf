//go:build linux

package wireguard

import (
	"encoding/binary"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// cmsg builds one control message as the kernel's put_cmsg lays it out.
func cmsg(level, typ int32, data []byte) []byte {
	b := make([]byte, unix.CmsgSpace(len(data)))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = level, typ
	h.SetLen(unix.CmsgLen(len(data)))
	copy(b[unix.CmsgLen(0):], data)
	return b
}

// FuzzGROSize: the segment size of a coalesced read comes from the
// kernel's UDP_GRO control message (an int), after any other control
// message; truncated or foreign control data gives 0 (not coalesced)
// without a panic, and a size is only ever read from a UDP_GRO message.
func FuzzGROSize(f *testing.F) {
	pktinfo := cmsg(unix.IPPROTO_IP, unix.IP_PKTINFO, make([]byte, unix.SizeofInet4Pktinfo))
	f.Add(int32(1424), true, uint8(0))
	f.Add(int32(1280), false, uint8(3)) // cut inside the message
	f.Add(int32(-1), true, uint8(0))
	f.Add(int32(0), false, uint8(255))
	f.Fuzz(func(t *testing.T, size int32, other bool, cut uint8) {
		var oob []byte
		if other {
			oob = append(oob, pktinfo...)
		}
		oob = append(oob, cmsg(unix.SOL_UDP, unix.UDP_GRO, binary.NativeEndian.AppendUint32(nil, uint32(size)))...)
		got := groSize(oob)
		if got != int(size) {
			t.Fatalf("UDP_GRO %d read as %d", size, got)
		}
		// Cut anywhere: a whole message is still read, a cut one is not.
		short := oob[:len(oob)-int(cut)%len(oob)]
		got = groSize(short)
		whole := len(short) >= len(oob)-(unix.CmsgSpace(4)-unix.CmsgLen(4))
		if whole && got != int(size) || !whole && got != 0 {
			t.Fatalf("%d of %d bytes: read %d", len(short), len(oob), got)
		}
		if groSize(pktinfo) != 0 || groSize(oob[:unix.SizeofCmsghdr-1]) != 0 {
			t.Fatal("a size read from no UDP_GRO message")
		}
	})
}
