//go:build linux

package wireguard

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"slices"
	"testing"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// ctFlow is what a ctnetlink dump message built by ctMessage says.
type ctFlow struct {
	family   uint8
	src, dst netip.Addr
	proto    uint8
	tcpState int // -1: no CTA_PROTOINFO
}

// ctTuple is a CTA_TUPLE_ORIG or CTA_TUPLE_REPLY laid out as the kernel's
// ctnetlink_dump_tuples writes it, with the netlink package's encoder.
func ctTuple(typ int, src, dst netip.Addr, proto uint8, sport, dport uint16) *nl.RtAttr {
	t := nl.NewRtAttr(typ|unix.NLA_F_NESTED, nil)
	ip := t.AddRtAttr(nl.CTA_TUPLE_IP|unix.NLA_F_NESTED, nil)
	srcType, dstType := nl.CTA_IP_V4_SRC, nl.CTA_IP_V4_DST
	if src.Is6() {
		srcType, dstType = nl.CTA_IP_V6_SRC, nl.CTA_IP_V6_DST
	}
	ip.AddRtAttr(srcType, src.AsSlice())
	ip.AddRtAttr(dstType, dst.AsSlice())
	p := t.AddRtAttr(nl.CTA_TUPLE_PROTO|unix.NLA_F_NESTED, nil)
	p.AddRtAttr(nl.CTA_PROTO_NUM, []byte{proto})
	p.AddRtAttr(nl.CTA_PROTO_SRC_PORT, binary.BigEndian.AppendUint16(nil, sport))
	p.AddRtAttr(nl.CTA_PROTO_DST_PORT, binary.BigEndian.AppendUint16(nil, dport))
	return t
}

// ctMessage builds one message of a conntrack dump (what ExecuteIter hands
// parseCtEntry: nfgenmsg and attributes) in the kernel's attribute order,
// and returns the serialized original tuple too.
func ctMessage(f ctFlow) (msg, orig []byte) {
	msg = (&nl.Nfgenmsg{NfgenFamily: f.family, Version: nl.NFNETLINK_V0}).Serialize()
	o := ctTuple(nl.CTA_TUPLE_ORIG, f.src, f.dst, f.proto, 40000, 443)
	orig = o.Serialize()
	msg = append(msg, orig...)
	msg = append(msg, ctTuple(nl.CTA_TUPLE_REPLY, f.dst, f.src, f.proto, 443, 40000).Serialize()...)
	msg = append(msg, nl.NewRtAttr(nl.CTA_STATUS, binary.BigEndian.AppendUint32(nil, 0x18e)).Serialize()...)
	msg = append(msg, nl.NewRtAttr(nl.CTA_TIMEOUT, binary.BigEndian.AppendUint32(nil, 431999)).Serialize()...)
	if f.tcpState >= 0 {
		pi := nl.NewRtAttr(nl.CTA_PROTOINFO|unix.NLA_F_NESTED, nil)
		tcp := pi.AddRtAttr(nl.CTA_PROTOINFO_TCP|unix.NLA_F_NESTED, nil)
		tcp.AddRtAttr(nl.CTA_PROTOINFO_TCP_STATE, []byte{uint8(f.tcpState)})
		tcp.AddRtAttr(nl.CTA_PROTOINFO_TCP_WSCALE_ORIGINAL, []byte{7})
		tcp.AddRtAttr(nl.CTA_PROTOINFO_TCP_WSCALE_REPLY, []byte{7})
		msg = append(msg, pi.Serialize()...)
	}
	msg = append(msg, nl.NewRtAttr(nl.CTA_MARK, make([]byte, 4)).Serialize()...)
	msg = append(msg, nl.NewRtAttr(nl.CTA_ID, binary.BigEndian.AppendUint32(nil, 0xdeadbeef)).Serialize()...)
	msg = append(msg, nl.NewRtAttr(nl.CTA_USE, binary.BigEndian.AppendUint32(nil, 1)).Serialize()...)
	return msg, orig
}

var ctSeeds = []ctFlow{
	{unix.AF_INET, netip.MustParseAddr("10.66.0.2"), netip.MustParseAddr("1.1.1.1"), unix.IPPROTO_TCP, 3}, // established
	{unix.AF_INET, netip.MustParseAddr("10.66.0.3"), netip.MustParseAddr("9.9.9.9"), unix.IPPROTO_TCP, tcpTimeWait},
	{unix.AF_INET6, netip.MustParseAddr("fd66::2"), netip.MustParseAddr("2001:db8::1"), unix.IPPROTO_UDP, -1},
	{unix.AF_INET, netip.MustParseAddr("10.66.0.2"), netip.MustParseAddr("10.66.0.1"), unix.IPPROTO_ICMP, -1},
}

func TestParseCtEntry(t *testing.T) {
	for _, f := range ctSeeds {
		msg, orig := ctMessage(f)
		var e ctEntry
		if !parseCtEntry(msg, &e) {
			t.Fatalf("%+v: not parsed", f)
		}
		want := uint8(tcpNone)
		if f.tcpState >= 0 {
			want = uint8(f.tcpState)
		}
		if e.family != f.family || e.src != f.src || e.dst != f.dst || e.proto != f.proto || e.tcpState != want ||
			!bytes.Equal(e.orig, orig) {
			t.Errorf("%+v parsed as %+v", f, e)
		}
	}
	if open := func(f ctFlow) bool {
		var e ctEntry
		msg, _ := ctMessage(f)
		parseCtEntry(msg, &e)
		return e.open()
	}; !open(ctSeeds[0]) || open(ctSeeds[1]) || !open(ctSeeds[2]) || open(ctSeeds[3]) {
		t.Error("open() misjudges established/time-wait/udp/icmp")
	}
	msg, _ := ctMessage(ctSeeds[0])
	var e ctEntry
	for _, bad := range [][]byte{nil, {2, 0}, msg[:nl.SizeofNfgenmsg], msg[:nl.SizeofNfgenmsg+8]} {
		if parseCtEntry(bad, &e) {
			t.Errorf("%x parsed as %+v", bad, e)
		}
	}
}

// FuzzParseCtEntry: any reply of the kernel (or garbage in its place) is
// read without a panic, and what is accepted is consistent: the original
// tuple is a whole attribute inside the message, the addresses are of one
// of the two families and come from inside it.
func FuzzParseCtEntry(f *testing.F) {
	for _, fl := range ctSeeds {
		msg, _ := ctMessage(fl)
		f.Add(msg)
		f.Add(msg[:len(msg)-3]) // cut inside the last attribute
	}
	f.Add([]byte{2, 0, 0, 0, 4, 0, 1, 0})                // an empty original tuple
	f.Add([]byte{2, 0, 0, 0, 0xff, 0xff, 1, 0, 1, 2, 3}) // a length past the end
	f.Add([]byte{2, 0, 0, 0, 3, 0, 1, 0})                // a length below the header
	f.Fuzz(func(t *testing.T, msg []byte) {
		keep := bytes.Clone(msg)
		var e ctEntry
		ok := parseCtEntry(msg, &e)
		if !bytes.Equal(keep, msg) {
			t.Fatal("the message changed")
		}
		if !ok {
			return
		}
		if len(e.orig) < unix.SizeofNlAttr || int(binary.NativeEndian.Uint16(e.orig)) != len(e.orig) ||
			binary.NativeEndian.Uint16(e.orig[2:])&nl.NLA_TYPE_MASK != nl.CTA_TUPLE_ORIG || !bytes.Contains(msg, e.orig) {
			t.Fatalf("orig %x is no whole CTA_TUPLE_ORIG of %x", e.orig, msg)
		}
		if e.family != msg[0] || !e.src.IsValid() || e.dst.IsValid() && e.dst.BitLen() != 32 && e.dst.BitLen() != 128 ||
			!bytes.Contains(e.orig, e.src.AsSlice()) {
			t.Fatalf("entry %+v from %x", e, msg)
		}
	})
}

// FuzzCtEntryRoundTrip: every flow the kernel can describe is read back as
// it was written, whatever other attributes follow.
func FuzzCtEntryRoundTrip(f *testing.F) {
	for _, fl := range ctSeeds {
		f.Add(fl.src.AsSlice(), fl.dst.AsSlice(), fl.proto, int16(fl.tcpState), []byte(nil))
	}
	f.Add([]byte{10, 66, 0, 2}, []byte{1, 1, 1, 1}, uint8(6), int16(8), []byte{8, 0, 1, 0, 1, 2, 3, 4, 5})
	f.Fuzz(func(t *testing.T, src, dst []byte, proto uint8, state int16, tail []byte) {
		s, ok1 := netip.AddrFromSlice(src)
		d, ok2 := netip.AddrFromSlice(dst)
		if !ok1 || !ok2 || s.Is4() != d.Is4() || state < -1 || state > 0xff || len(tail) > 0xff00 {
			return
		}
		fl := ctFlow{unix.AF_INET, s, d, proto, int(state)}
		if s.Is6() {
			fl.family = unix.AF_INET6
		}
		msg, orig := ctMessage(fl)
		// An attribute this parser does not know (a newer kernel's), with
		// any content, and a stub too short to be an attribute after it,
		// change nothing.
		msg = append(msg, nl.NewRtAttr(nl.CTA_LABELS, tail).Serialize()...)
		msg = append(msg, tail[:min(len(tail), unix.SizeofNlAttr-1)]...)
		var e ctEntry
		if !parseCtEntry(msg, &e) {
			t.Fatalf("%+v not parsed", fl)
		}
		want := uint8(tcpNone)
		if state >= 0 {
			want = uint8(state)
		}
		if e.family != fl.family || e.src != s || e.dst != d || e.proto != proto || !bytes.Equal(e.orig, orig) ||
			e.tcpState != want {
			t.Fatalf("%+v read as %+v", fl, e)
		}
	})
}

// ctRawDump returns the messages of a conntrack dump as the kernel sent
// them (what ctDump hands parseCtEntry).
func ctRawDump() ([][]byte, error) {
	req := nl.NewNetlinkRequest(ctMsg(nl.IPCTNL_MSG_CT_GET), unix.NLM_F_DUMP)
	req.AddData(&nl.Nfgenmsg{NfgenFamily: unix.AF_UNSPEC, Version: nl.NFNETLINK_V0})
	var out [][]byte
	err := req.ExecuteIter(unix.NETLINK_NETFILTER, 0, func(msg []byte) bool {
		out = append(out, bytes.Clone(msg))
		return true
	})
	return out, err
}

// TestCtMessageLikeKernel: the fuzz seeds' layout is the kernel's. In a
// namespace of its own, the kernel's dump of flows like the seeds' parses
// to them, and its original tuples are byte for byte what ctMessage
// writes.
func TestCtMessageLikeKernel(t *testing.T) {
	ns := ctNetns(t)
	var msgs [][]byte
	err := inNetns(ns, func() error {
		for _, f := range ctSeeds[:3] {
			state := uint8(0) // UDP
			if f.tcpState >= 0 {
				state = uint8(f.tcpState)
			}
			if err := ctAdd(f.src, f.dst, 40000, state); err != nil {
				return err
			}
		}
		var err error
		msgs, err = ctRawDump()
		return err
	})
	if err != nil {
		t.Skipf("no conntrack here: %v", err)
	}
	if len(msgs) != 3 {
		t.Fatalf("dumped %d entries", len(msgs))
	}
	for _, msg := range msgs {
		var e ctEntry
		if !parseCtEntry(msg, &e) {
			t.Fatalf("kernel message %x not parsed", msg)
		}
		i := slices.IndexFunc(ctSeeds, func(f ctFlow) bool { return f.src == e.src })
		if i < 0 {
			t.Fatalf("entry %+v is none of the seeds", e)
		}
		f := ctSeeds[i]
		if e.dst != f.dst || e.proto != f.proto || e.family != f.family {
			t.Errorf("kernel entry %+v, want %+v", e, f)
		}
		if _, orig := ctMessage(f); !bytes.Equal(orig, e.orig) {
			t.Errorf("original tuple:\nkernel %x\nseed   %x", e.orig, orig)
		}
	}
}
