//go:build linux

package wireguard

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Tun mode reads the kernel's connection tracking table over netlink
// (ctnetlink) for two things: the peers' open flows (Counter.Conns) and,
// when a peer is taken off, the removal of its flows, whose NAT mappings
// would otherwise outlive it until conntrack's timeouts (days for an
// established TCP flow) while the far end's packets go nowhere.
//
// A dump is parsed here rather than with netlink.ConntrackTableList, which
// builds a struct and four IP slices per entry: a node with 10,000 peers may
// track 100,000 flows. This parser allocates nothing per entry.

// ctMsg is the ctnetlink message type for op on the conntrack table.
func ctMsg(op int) int { return int(netlink.ConntrackTable)<<8 | op }

// ctEntry is what tun mode needs of one conntrack entry.
type ctEntry struct {
	family   uint8
	src, dst netip.Addr // the original direction: a peer's flow starts at its tunnel address
	proto    uint8
	tcpState uint8  // tcpNone when the entry carries no TCP state
	orig     []byte // the CTA_TUPLE_ORIG attribute, which names the entry for a delete
}

// TCP states of conntrack (enum tcp_conntrack) that no longer hold a
// connection open: nft's ct count (tun mode's MaxConns) skips them too.
const (
	tcpTimeWait = 7
	tcpClose    = 8
	tcpNone     = 0xff
)

// open reports an entry that is a live flow: not a TCP connection that has
// ended, and not ICMP (pings are not connections).
func (e *ctEntry) open() bool {
	switch e.proto {
	case unix.IPPROTO_ICMP, unix.IPPROTO_ICMPV6:
		return false
	case unix.IPPROTO_TCP:
		return e.tcpState != tcpTimeWait && e.tcpState != tcpClose
	}
	return true
}

// ctDump calls f with every entry of the conntrack table of family
// (AF_UNSPEC for all). e and its orig are only valid during the call.
func ctDump(family uint8, f func(e *ctEntry)) error {
	req := nl.NewNetlinkRequest(ctMsg(nl.IPCTNL_MSG_CT_GET), unix.NLM_F_DUMP)
	req.AddData(&nl.Nfgenmsg{NfgenFamily: family, Version: nl.NFNETLINK_V0})
	var e ctEntry
	err := req.ExecuteIter(unix.NETLINK_NETFILTER, 0, func(msg []byte) bool {
		if parseCtEntry(msg, &e) {
			f(&e)
		}
		return true
	})
	// An interrupted dump (the table changed under it) still saw most
	// entries: good enough for a count, and a removal is retried by the
	// far end's next packet anyway.
	if err != nil && !errors.Is(err, nl.ErrDumpInterrupted) {
		return fmt.Errorf("reading conntrack: %w", err)
	}
	return nil
}

// parseCtEntry reads a ctnetlink message (nfgenmsg, then attributes) into
// e; false when it lacks an original tuple.
func parseCtEntry(msg []byte, e *ctEntry) bool {
	if len(msg) < nl.SizeofNfgenmsg {
		return false
	}
	*e = ctEntry{family: msg[0], tcpState: tcpNone}
	for typ, val := range attrs(msg[nl.SizeofNfgenmsg:]) {
		switch typ.kind {
		case nl.CTA_TUPLE_ORIG:
			// A repeated tuple replaces the whole of the earlier one, so
			// that orig (what a delete names) and the addresses (what
			// picks the entry to delete) always describe the same flow.
			e.orig, e.src, e.dst, e.proto = typ.raw, netip.Addr{}, netip.Addr{}, 0
			parseTuple(val, e)
		case nl.CTA_PROTOINFO:
			for t, v := range attrs(val) {
				if t.kind != nl.CTA_PROTOINFO_TCP {
					continue
				}
				for t2, v2 := range attrs(v) {
					if t2.kind == nl.CTA_PROTOINFO_TCP_STATE && len(v2) == 1 {
						e.tcpState = v2[0]
					}
				}
			}
		}
	}
	return e.orig != nil && e.src.IsValid()
}

// parseTuple reads a CTA_TUPLE_ORIG's addresses and protocol.
func parseTuple(b []byte, e *ctEntry) {
	for t, v := range attrs(b) {
		switch t.kind {
		case nl.CTA_TUPLE_IP:
			for t2, v2 := range attrs(v) {
				a, ok := netip.AddrFromSlice(v2)
				if !ok {
					continue
				}
				switch t2.kind {
				case nl.CTA_IP_V4_SRC, nl.CTA_IP_V6_SRC:
					e.src = a
				case nl.CTA_IP_V4_DST, nl.CTA_IP_V6_DST:
					e.dst = a
				}
			}
		case nl.CTA_TUPLE_PROTO:
			for t2, v2 := range attrs(v) {
				if t2.kind == nl.CTA_PROTO_NUM && len(v2) == 1 {
					e.proto = v2[0]
				}
			}
		}
	}
}

// attrType is a netlink attribute's type without its flags, and the whole
// attribute (header included) as it came.
type attrType struct {
	kind uint16
	raw  []byte
}

// attrs iterates over the netlink attributes in b; it stops at the first
// malformed one.
func attrs(b []byte) iter.Seq2[attrType, []byte] {
	return func(yield func(attrType, []byte) bool) {
		for len(b) >= unix.SizeofNlAttr {
			n := int(binary.NativeEndian.Uint16(b[0:2]))
			if n < unix.SizeofNlAttr || n > len(b) {
				return
			}
			t := attrType{kind: binary.NativeEndian.Uint16(b[2:4]) & nl.NLA_TYPE_MASK, raw: b[:n]}
			if !yield(t, b[unix.SizeofNlAttr:n]) {
				return
			}
			n = (n + unix.NLA_ALIGNTO - 1) &^ (unix.NLA_ALIGNTO - 1)
			if n > len(b) {
				return
			}
			b = b[n:]
		}
	}
}

// ctCount counts the open flows of the tunnel pools' addresses, towards
// anything but the gateways (DNS queries to the node are not the peer's
// connections): one dump, a map update per entry.
func ctCount(pool4, pool6 netip.Prefix, gw4, gw6 netip.Addr) (map[netip.Addr]int, error) {
	out := map[netip.Addr]int{}
	err := ctDump(unix.AF_UNSPEC, func(e *ctEntry) {
		if !e.open() || e.dst == gw4 || e.dst == gw6 || !pool4.Contains(e.src) && !pool6.Contains(e.src) {
			return
		}
		out[e.src]++
	})
	return out, err
}

// ctDelete removes every conntrack entry whose original source is one of
// srcs, and reports how many went. Entries are named by their original
// tuple, as conntrack -D does.
func ctDelete(srcs map[netip.Addr]struct{}) (int, error) {
	if len(srcs) == 0 {
		return 0, nil
	}
	type victim struct {
		family uint8
		orig   []byte
	}
	var vs []victim
	if err := ctDump(unix.AF_UNSPEC, func(e *ctEntry) {
		if _, ok := srcs[e.src]; ok {
			vs = append(vs, victim{e.family, append([]byte(nil), e.orig...)})
		}
	}); err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, v := range vs {
		req := nl.NewNetlinkRequest(ctMsg(nl.IPCTNL_MSG_CT_DELETE), unix.NLM_F_ACK)
		req.AddData(&nl.Nfgenmsg{NfgenFamily: v.family, Version: nl.NFNETLINK_V0})
		req.AddRawData(v.orig)
		switch _, err := req.Execute(unix.NETLINK_NETFILTER, 0); {
		case err == nil:
			n++
		case errors.Is(err, fs.ErrNotExist): // ended meanwhile
		default:
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return n, fmt.Errorf("deleting %d conntrack entries, first: %w", len(errs), errs[0])
	}
	return n, nil
}

// endFlowsLocked queues a peer taken off for good (revoked, suspended, cut,
// or its key replaced) for syncKernelLocked to remove its conntrack
// entries: the far end's next packet then finds no NAT mapping and gets a
// reset from the node, so the flow dies at once instead of hanging. Parked
// peers keep theirs: their client comes back to them. So do addresses
// installed again by the time the change is applied (a key rotated in
// place keeps its addresses, and the flows go on with the new key).
func (s *Server) endFlowsLocked(p *peer) {
	if s.kern == nil {
		return
	}
	if s.kern.gone == nil {
		s.kern.gone = map[netip.Addr]struct{}{}
	}
	for _, a := range []netip.Addr{p.v4, p.v6} {
		if a.IsValid() {
			s.kern.gone[a] = struct{}{}
		}
	}
}

// syncKernelLocked brings the kernel's side in line after the device's
// peers changed: the flows of peers taken off are removed, then the
// connection limits follow the installed peers.
func (s *Server) syncKernelLocked(ctx context.Context) error {
	if s.kern == nil {
		return nil
	}
	var errs []error
	if gone := s.kern.gone; len(gone) > 0 {
		s.kern.gone = nil
		// An address handed out again since (a new credential) keeps its
		// new owner's flows.
		for _, p := range s.peers {
			if p.onDevice || p.parked {
				delete(gone, p.v4)
				delete(gone, p.v6)
			}
		}
		n, err := ctDelete(gone)
		if err != nil {
			errs = append(errs, fmt.Errorf("wireguard: closing removed peers' flows: %w", err))
		}
		if n > 0 {
			s.log.Info("wireguard_flows_closed", "details", fmt.Sprintf("%d tracked flows of %d removed tunnel addresses", n, len(gone)))
		}
	}
	errs = append(errs, s.syncConnLimitsLocked(ctx))
	return errors.Join(errs...)
}

// readKernelConns counts the peers' open flows from conntrack (tun mode's
// Counter.Conns) when the counters are read, not every Interval: a dump
// costs the kernel ~2 µs of CPU per tracked flow (BenchmarkTunConntrackCount),
// and the reconcile loop reads the counters every 10 s. The dump runs
// without the lock.
func (s *Server) readKernelConns() error {
	if s.kern == nil {
		return nil
	}
	counts, err := ctCount(s.o.PoolV4, s.o.PoolV6, s.gw4, s.gw6)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.kern.conns = counts
	s.mu.Unlock()
	return nil
}

// kernelConnsLocked is the peer's open flows at the last conntrack reading.
func (s *Server) kernelConnsLocked(p *peer) int {
	if s.kern == nil {
		return 0
	}
	return s.kern.conns[p.v4] + s.kern.conns[p.v6]
}
