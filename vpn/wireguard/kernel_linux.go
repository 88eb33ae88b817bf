//go:build linux

package wireguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/tun"
)

// kernelPlane is what tun mode adds to a Server: the kernel interface's
// firewall table, the gateway's DNS sockets (UDP and TCP) and the sysctls
// it changed.
type kernelPlane struct {
	fw        firewall
	fwOn      bool
	dns       []net.PacketConn
	dnsTCP    []net.Listener
	sysctls   []sysctlChange
	counters  map[string]uint64 // last reading of the firewall's counters
	limits    connLimits        // the connection limits installed
	installed string            // the rules installed, to see a change
	// conns is the open flows by tunnel address at the last conntrack
	// reading; gone the addresses of peers taken off, whose flows
	// syncKernelLocked removes (both guarded by Server.mu).
	conns map[netip.Addr]int
	gone  map[netip.Addr]struct{}
}

// startKernel creates the TUN interface, addresses it, enables forwarding
// and installs the firewall; the device it returns meters peers' speeds.
func (s *Server) startKernel() (tun.Device, error) {
	if err := CheckTUN().Err(); err != nil {
		return nil, err
	}
	fw, err := findFirewall(s.o.firewall)
	if err != nil {
		return nil, err
	}
	k := &kernelPlane{fw: fw, counters: map[string]uint64{}}
	s.kern = k
	tdev, err := tun.CreateTUN(s.o.Iface, s.o.MTU)
	if err != nil {
		return nil, fmt.Errorf("wireguard tun mode: creating interface %s: %w", s.o.Iface, err)
	}
	if err := s.setupKernel(k); err != nil {
		tdev.Close()
		k.close(s)
		return nil, err
	}
	return &meteredTUN{Device: tdev, lookup: s.lookup}, nil
}

func (s *Server) setupKernel(k *kernelPlane) error {
	gw := []netip.Prefix{netip.PrefixFrom(s.gw4, s.o.PoolV4.Bits()), netip.PrefixFrom(s.gw6, s.o.PoolV6.Bits())}
	served := []netip.Addr{s.gw4, s.gw6}
	if err := configureLink(s.o.Iface, s.o.MTU, gw); errors.Is(err, errNoIPv6) {
		// IPv6 is disabled on this host: peers get IPv4 only.
		s.log.Warn("wireguard_ipv6", "details", "IPv6 is disabled here: the tunnel carries IPv4 only")
		served = served[:1]
	} else if err != nil {
		return fmt.Errorf("wireguard tun mode: configuring %s: %w", s.o.Iface, err)
	}
	spec, err := s.firewallSpec()
	if err != nil {
		return err
	}
	changed, err := enableForwarding(spec.out6)
	k.sysctls = changed
	if err != nil {
		return err
	}
	for _, c := range changed {
		s.log.Info("wireguard_sysctl", "details", fmt.Sprintf("set %s to %s (was %s)", c.key, c.now, c.was))
	}
	if err := k.fw.apply(s.ctx, spec); err != nil {
		return fmt.Errorf("wireguard tun mode: installing the firewall: %w", err)
	}
	k.fwOn, k.installed = true, spec.ruleset()
	for _, a := range served {
		pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, 53)))
		if err != nil {
			return fmt.Errorf("wireguard tun mode: the gateway's DNS on %s: %w", a, err)
		}
		k.dns = append(k.dns, pc)
		if !s.track() {
			return errors.New("wireguard: closed")
		}
		go func() {
			defer s.untrack()
			s.serveDNSPackets(pc)
		}()
		ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(a, 53)))
		if err != nil {
			return fmt.Errorf("wireguard tun mode: the gateway's DNS over TCP on %s: %w", a, err)
		}
		k.dnsTCP = append(k.dnsTCP, ln)
		if !s.track() {
			return errors.New("wireguard: closed")
		}
		go func() {
			defer s.untrack()
			s.serveDNSListener(ln)
		}()
	}
	s.log.Info("wireguard_firewall", "details", fmt.Sprintf("%s rules installed; masquerading out of %v %v", k.fw.name(), spec.out4, spec.out6))
	return nil
}

// firewallSpec is the rules as of now: the default routes' interfaces and
// the egress policy with the node's current addresses (the gateways among
// them once the interface has them).
func (s *Server) firewallSpec() (fwSpec, error) {
	out4, out6, err := defaultRouteIfaces()
	if err != nil {
		return fwSpec{}, fmt.Errorf("wireguard tun mode: reading routes: %w", err)
	}
	if len(out4) == 0 && len(out6) == 0 {
		return fwSpec{}, errors.New("wireguard tun mode: no default route, so peers' traffic has nowhere to go")
	}
	if err := s.o.Egress.Refresh(); err != nil {
		return fwSpec{}, err
	}
	return fwSpec{iface: s.o.Iface, pool4: s.o.PoolV4, pool6: s.o.PoolV6, gw4: s.gw4, gw6: s.gw6,
		out4: out4, out6: out6, policy: s.o.Egress.Rules()}, nil
}

// refreshFirewall re-installs the rules when the node's addresses or
// default routes changed (a new DHCP lease, an added address), then its
// connection limits, which the new table starts without.
func (s *Server) refreshFirewall() error {
	k := s.kern
	spec, err := s.firewallSpec()
	if err != nil {
		return err
	}
	rs := spec.ruleset()
	if rs == k.installed {
		return nil
	}
	if err := k.fw.apply(s.ctx, spec); err != nil {
		return fmt.Errorf("wireguard tun mode: refreshing the firewall: %w", err)
	}
	k.installed = rs
	s.log.Info("wireguard_firewall", "details", fmt.Sprintf("%s rules refreshed; masquerading out of %v %v", k.fw.name(), spec.out4, spec.out6))
	s.mu.Lock()
	defer s.mu.Unlock()
	k.limits = nil
	return s.syncConnLimitsLocked(s.ctx)
}

// close undoes what startKernel did; the TUN interface goes with its device.
func (k *kernelPlane) close(s *Server) {
	for _, pc := range k.dns {
		pc.Close()
	}
	for _, ln := range k.dnsTCP {
		ln.Close()
	}
	if k.fwOn {
		if err := k.fw.remove(context.Background()); err != nil {
			s.log.Warn("wireguard_firewall", "error", err.Error())
		}
		k.fwOn = false
	}
	for _, c := range slices.Backward(k.sysctls) {
		if err := writeSysctl(c.key, c.was); err != nil {
			s.log.Warn("wireguard_sysctl", "error", err.Error())
		}
	}
	k.sysctls = nil
}

// readCounters adds the firewall's refusals since the last reading to the
// refused-flows metric.
func (k *kernelPlane) readCounters(ctx context.Context, m *serverMetrics) error {
	cur, err := k.fw.counters(ctx)
	if err != nil {
		return err
	}
	for name, v := range cur {
		reason, ok := fwCounters[name]
		if !ok {
			continue
		}
		last := k.counters[name]
		if v < last { // the table was replaced meanwhile
			last = 0
		}
		m.refused[reason].Add(int(v - last))
		k.counters[name] = v
	}
	return nil
}

// configureLink sets the interface's MTU and addresses and brings it up.
func configureLink(name string, mtu int, addrs []netip.Prefix) error {
	noV6 := false
	h, err := netlink.NewHandle()
	if err != nil {
		return err
	}
	defer h.Close()
	link, err := h.LinkByName(name)
	if err != nil {
		return err
	}
	if err := h.LinkSetMTU(link, mtu); err != nil {
		return fmt.Errorf("setting MTU %d: %w", mtu, err)
	}
	for _, p := range addrs {
		// No duplicate address detection: a TUN has no neighbours, and a
		// tentative address could not be bound by the DNS socket yet.
		a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
		if p.Addr().Is6() {
			a.Flags = unix.IFA_F_NODAD
		}
		if err := h.AddrReplace(link, a); err != nil {
			if p.Addr().Is6() && errors.Is(err, unix.EACCES) {
				noV6 = true
				continue
			}
			return fmt.Errorf("adding address %s: %w", p, err)
		}
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("bringing the link up: %w", err)
	}
	if noV6 {
		return errNoIPv6
	}
	return nil
}

// errNoIPv6 is configureLink's word that IPv6 is disabled (the rest is done).
var errNoIPv6 = errors.New("IPv6 is disabled")

// defaultRouteIfaces names the interfaces of the main table's default
// routes, IPv4 and IPv6.
func defaultRouteIfaces() (v4, v6 []string, err error) {
	h, err := netlink.NewHandle()
	if err != nil {
		return nil, nil, err
	}
	defer h.Close()
	get := func(family int) ([]string, error) {
		routes, err := h.RouteListFiltered(family, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return nil, err
		}
		var names []string
		for _, r := range routes {
			if r.Dst != nil {
				if ones, _ := r.Dst.Mask.Size(); ones != 0 {
					continue
				}
			}
			idx := []int{r.LinkIndex}
			for _, nh := range r.MultiPath {
				idx = append(idx, nh.LinkIndex)
			}
			for _, i := range idx {
				if i == 0 {
					continue
				}
				if l, err := h.LinkByIndex(i); err == nil && !slices.Contains(names, l.Attrs().Name) {
					names = append(names, l.Attrs().Name)
				}
			}
		}
		return names, nil
	}
	if v4, err = get(netlink.FAMILY_V4); err != nil {
		return nil, nil, err
	}
	if v6, err = get(netlink.FAMILY_V6); err != nil {
		return nil, nil, err
	}
	return v4, v6, nil
}
