package wireguard

import (
	"net/netip"
	"time"

	"golang.zx2c4.com/wireguard/tun"
)

// meteredTUN holds each peer to its speed limit in tun mode, where no
// forwarder sees its flows: packets over the peer's token bucket are
// dropped (a policer: TCP backs off, UDP loses datagrams), towards the peer
// on Read and from it on Write. Every packet also counts against the
// peer's budget left (live.spend), so a data cap acts at once rather than
// at the next interval. Peers without limits cost one map lookup.
type meteredTUN struct {
	tun.Device
	lookup func(netip.Addr) *live
}

// packetAddrs returns an IP packet's source and destination.
func packetAddrs(p []byte) (src, dst netip.Addr, ok bool) {
	if len(p) < 20 {
		return src, dst, false
	}
	switch p[0] >> 4 {
	case 4:
		return netip.AddrFrom4([4]byte(p[12:16])), netip.AddrFrom4([4]byte(p[16:20])), true
	case 6:
		if len(p) < 40 {
			return src, dst, false
		}
		return netip.AddrFrom16([16]byte(p[8:24])), netip.AddrFrom16([16]byte(p[24:40])), true
	}
	return src, dst, false
}

// Read implements tun.Device: packets from the host to peers. A dropped
// packet is left with size 0, which the device skips.
func (m *meteredTUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	n, err := m.Device.Read(bufs, sizes, offset)
	var now time.Time
	for i := range n {
		_, dst, ok := packetAddrs(bufs[i][offset : offset+sizes[i]])
		if !ok {
			continue
		}
		l := m.lookup(dst)
		if l == nil {
			continue
		}
		l.spend(sizes[i])
		if !l.limited.Load() {
			continue
		}
		if now.IsZero() {
			now = time.Now()
		}
		if !l.down.AllowN(now, sizes[i]) {
			sizes[i] = 0
		}
	}
	return n, err
}

// Write implements tun.Device: packets from peers to the host. Write runs
// on every peer's receive goroutine at once; it copies the batch only when
// it drops something.
func (m *meteredTUN) Write(bufs [][]byte, offset int) (int, error) {
	var kept [][]byte
	var now time.Time
	for i, b := range bufs {
		src, _, ok := packetAddrs(b[offset:])
		var l *live
		if ok {
			l = m.lookup(src)
		}
		if l != nil {
			l.spend(len(b) - offset)
		}
		if l != nil && l.limited.Load() {
			if now.IsZero() {
				now = time.Now()
			}
			if !l.up.AllowN(now, len(b)-offset) {
				if kept == nil {
					kept = append(make([][]byte, 0, len(bufs)), bufs[:i]...)
				}
				continue
			}
		}
		if kept != nil {
			kept = append(kept, b)
		}
	}
	if kept == nil {
		return m.Device.Write(bufs, offset)
	}
	if len(kept) == 0 {
		return 0, nil
	}
	return m.Device.Write(kept, offset)
}
