package netstack

import (
	"net/netip"
	"testing"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

func echoPacket(dst [4]byte, fragOff uint16) []byte {
	body, _ := (&icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: 1, Seq: 1}}).Marshal(nil)
	p := make([]byte, 20, 20+len(body))
	p[0], p[9] = 0x45, 1
	p[6], p[7] = byte(fragOff>>8), byte(fragOff)
	copy(p[12:16], []byte{10, 66, 0, 2})
	copy(p[16:20], dst[:])
	return append(p, body...)
}

// TestStrayEcho: echo to the gateway passes, echo elsewhere is stray; later
// fragments, other ICMP and short packets are not looked at.
func TestStrayEcho(t *testing.T) {
	d := &Device{addrs: []netip.Addr{netip.MustParseAddr("10.66.0.1"), netip.MustParseAddr("fd66::1")}}
	for _, c := range []struct {
		name string
		pkt  []byte
		want bool
	}{
		{"to the gateway", echoPacket([4]byte{10, 66, 0, 1}, 0), false},
		{"elsewhere", echoPacket([4]byte{203, 0, 113, 7}, 0), true},
		{"a later fragment", echoPacket([4]byte{203, 0, 113, 7}, 3), false},
		{"short", []byte{0x45, 0, 0}, false},
		{"v6 elsewhere", v6Echo(netip.MustParseAddr("2001:db8::1")), true},
		{"v6 to the gateway", v6Echo(netip.MustParseAddr("fd66::1")), false},
	} {
		if got := d.strayEcho(c.pkt); got != c.want {
			t.Errorf("%s: stray %v, want %v", c.name, got, c.want)
		}
	}
}

func v6Echo(dst netip.Addr) []byte {
	p := make([]byte, 48)
	p[0], p[6] = 0x60, 58
	a := dst.As16()
	copy(p[24:40], a[:])
	p[40] = 128
	return p
}

// FuzzStrayEcho: any bytes from a peer are looked at without a panic.
func FuzzStrayEcho(f *testing.F) {
	f.Add(echoPacket([4]byte{10, 66, 0, 1}, 0))
	f.Add(v6Echo(netip.MustParseAddr("fd66::1")))
	f.Add([]byte{0x4f})
	d := &Device{addrs: []netip.Addr{netip.MustParseAddr("10.66.0.1")}}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 {
			return
		}
		d.strayEcho(b)
	})
}
