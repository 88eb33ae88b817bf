package egress

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"
)

func newDialer(t testing.TB, opts Options) *Dialer {
	t.Helper()
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func prefixes(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, x := range s {
		out = append(out, netip.MustParsePrefix(x))
	}
	return out
}

// reasonOf returns the refusal reason of err, "" for nil, and fails on other errors.
func reasonOf(t testing.TB, err error) string {
	t.Helper()
	if err == nil {
		return ""
	}
	var de *DeniedError
	if !errors.As(err, &de) || !errors.Is(err, ErrDenied) {
		t.Fatalf("error %v (%T) is not a *DeniedError matching ErrDenied", err, err)
	}
	return de.Reason
}

func TestCheckDefaults(t *testing.T) {
	d := newDialer(t, Options{})
	// Interface addresses are "own", which would shadow the reasons below for
	// 127.0.0.1 and the like; this test is about the ranges.
	d.interfaceAddrs = func() ([]net.Addr, error) { return nil, nil }
	if err := d.Refresh(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		addr, want string
	}{
		{"0.0.0.0:80", ReasonReserved},
		{"0.1.2.3:80", ReasonReserved},
		{"10.0.0.1:80", ReasonPrivate},
		{"10.255.255.255:443", ReasonPrivate},
		{"100.64.0.1:80", ReasonPrivate},
		{"100.127.255.254:80", ReasonPrivate},
		{"127.0.0.1:80", ReasonLoopback},
		{"127.255.0.1:80", ReasonLoopback},
		{"169.254.169.254:80", ReasonLinkLocal},
		{"172.16.0.1:80", ReasonPrivate},
		{"172.31.255.255:80", ReasonPrivate},
		{"192.0.0.8:80", ReasonReserved},
		{"192.0.2.1:80", ReasonReserved},
		{"192.168.1.1:80", ReasonPrivate},
		{"198.18.0.1:80", ReasonReserved},
		{"198.19.255.255:80", ReasonReserved},
		{"198.51.100.7:80", ReasonReserved},
		{"203.0.113.9:80", ReasonReserved},
		{"224.0.0.1:80", ReasonMulticast},
		{"239.255.255.250:1900", ReasonMulticast},
		{"240.0.0.1:80", ReasonReserved},
		{"255.255.255.255:80", ReasonReserved},
		{"[::]:80", ReasonReserved},
		{"[::1]:80", ReasonLoopback},
		{"[fc00::1]:80", ReasonPrivate},
		{"[fd12:3456::1]:80", ReasonPrivate},
		{"[fe80::1]:80", ReasonLinkLocal},
		{"[fe80::1%eth0]:80", ReasonLinkLocal},
		{"[ff02::1]:80", ReasonMulticast},
		{"[2001:db8::1]:80", ReasonReserved},
		{"[3fff::1]:80", ReasonReserved},
		{"[64:ff9b:1::a00:1]:80", ReasonReserved},
		// IPv4 inside IPv6 is judged as IPv4.
		{"[::ffff:10.0.0.1]:80", ReasonPrivate},
		{"[::ffff:127.0.0.1]:80", ReasonLoopback},
		{"[::ffff:169.254.169.254]:80", ReasonLinkLocal},
		{"[::ffff:100.64.1.1]:80", ReasonPrivate},
		{"[::ffff:0.0.0.0]:80", ReasonReserved},
		{"[::ffff:7f00:1]:80", ReasonLoopback},
		{"[::127.0.0.1]:80", ReasonLoopback},
		{"[::10.1.2.3]:80", ReasonPrivate},
		{"[::ffff:0:192.168.0.1]:80", ReasonPrivate},
		{"[64:ff9b::10.0.0.1]:80", ReasonPrivate},
		{"[64:ff9b::127.0.0.1]:80", ReasonLoopback},
		{"[2002:a00:1::1]:80", ReasonPrivate},
		{"[2002:7f00:1::]:80", ReasonLoopback},
		{"[2002:a9fe:a9fe::1]:80", ReasonLinkLocal},
		// Mail ports, on otherwise public addresses.
		{"8.8.8.8:25", ReasonMail},
		{"8.8.8.8:465", ReasonMail},
		{"8.8.8.8:587", ReasonMail},
		{"[2606:4700::1111]:25", ReasonMail},
		// Port 0 is never a destination.
		{"8.8.8.8:0", ReasonInvalid},
		// Public-looking destinations pass.
		{"8.8.8.8:53", ""},
		{"1.1.1.1:443", ""},
		{"100.128.0.1:80", ""},
		{"172.32.0.1:80", ""},
		{"198.20.0.1:80", ""},
		{"[2606:4700::1111]:443", ""},
		{"[::ffff:8.8.8.8]:443", ""},
		{"[64:ff9b::8.8.8.8]:443", ""},
		{"[2002:808:808::1]:443", ""},
		{"8.8.8.8:24", ""},
		{"8.8.8.8:26", ""},
	} {
		ap := netip.MustParseAddrPort(tc.addr)
		if got := reasonOf(t, d.Check(ap)); got != tc.want {
			t.Errorf("Check(%s) = %q, want %q", tc.addr, got, tc.want)
		}
	}
	if got := reasonOf(t, d.Check(netip.AddrPort{})); got != ReasonInvalid {
		t.Errorf("Check(zero) = %q, want invalid", got)
	}
}

func TestCheckPrecedence(t *testing.T) {
	d := newDialer(t, Options{
		Allow: prefixes("127.0.0.1/32", "10.0.0.0/8", "192.168.7.0/24", "fd00::/8", "::ffff:172.16.1.0/120"),
		Deny:  prefixes("10.9.0.0/16", "8.8.4.0/24", "2606:4700::/32", "::ffff:1.2.3.0/120"),
		Own:   []netip.Addr{netip.MustParseAddr("9.9.9.9"), netip.MustParseAddr("192.168.7.7")},
	})
	for _, tc := range []struct {
		addr, want string
	}{
		{"127.0.0.1:80", ""},             // allow beats loopback and own (lo is an interface)
		{"[::ffff:127.0.0.1]:80", ""},    // allow matches the unmapped form
		{"127.0.0.2:80", ReasonLoopback}, // outside the allowed /32
		{"[::1]:80", "*"},                // allowing 127.0.0.1 does not allow ::1 (own or loopback)
		{"10.1.2.3:80", ""},
		{"10.9.1.1:80", ReasonDeny},          // deny beats allow
		{"[::ffff:10.9.1.1]:80", ReasonDeny}, // in mapped form too
		{"[64:ff9b::10.9.1.1]:80", ReasonDeny},
		{"10.1.2.3:25", ReasonMail}, // allow does not open the mail ports
		{"10.9.1.1:25", ReasonDeny}, // deny comes first
		{"8.8.4.4:443", ReasonDeny}, // deny on a public address
		{"8.8.8.8:443", ""},
		{"[2606:4700::1]:443", ReasonDeny},
		{"1.2.3.4:443", ReasonDeny}, // mapped deny prefix normalised to 1.2.3.0/24
		{"172.16.1.9:443", ""},      // mapped allow prefix normalised to 172.16.1.0/24
		{"172.16.2.9:443", ReasonPrivate},
		{"9.9.9.9:443", ReasonOwn},          // Options.Own
		{"[::ffff:9.9.9.9]:443", ReasonOwn}, // in mapped form
		{"[2002:909:909::]:443", ReasonOwn}, // and 6to4 form
		{"192.168.7.7:443", ""},             // allow beats own
		{"[fd00::1]:443", ""},
		{"[fc00::1]:443", ReasonPrivate},
	} {
		ap := netip.MustParseAddrPort(tc.addr)
		got := reasonOf(t, d.Check(ap))
		if got != tc.want && !(tc.want == "*" && got != "") {
			t.Errorf("Check(%s) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}

func TestAllowMail(t *testing.T) {
	d := newDialer(t, Options{AllowMail: true, Deny: prefixes("8.8.4.4/32")})
	for _, port := range []uint16{25, 465, 587} {
		if err := d.Check(netip.AddrPortFrom(netip.MustParseAddr("8.8.8.8"), port)); err != nil {
			t.Errorf("port %d with AllowMail: %v", port, err)
		}
		if got := reasonOf(t, d.Check(netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), port))); got != ReasonPrivate {
			t.Errorf("private port %d with AllowMail: %q", port, got)
		}
		if got := reasonOf(t, d.Check(netip.AddrPortFrom(netip.MustParseAddr("8.8.4.4"), port))); got != ReasonDeny {
			t.Errorf("denied port %d with AllowMail: %q", port, got)
		}
	}
}

func TestOwnAddresses(t *testing.T) {
	d := newDialer(t, Options{Own: []netip.Addr{netip.MustParseAddr("::ffff:9.9.9.9")}})
	// Every interface address of this machine is refused as own, in every form.
	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, ia := range ifaddrs {
		ipn, ok := ia.(*net.IPNet)
		if !ok {
			continue
		}
		a, _ := netip.AddrFromSlice(ipn.IP)
		a = a.Unmap()
		forms := []netip.Addr{a}
		if a.Is4() {
			forms = append(forms, netip.AddrFrom16(a.As16()))
		}
		for _, f := range forms {
			if got := reasonOf(t, d.Check(netip.AddrPortFrom(f, 443))); got != ReasonOwn {
				t.Errorf("interface address %s: %q, want own", f, got)
			}
		}
	}
	if got := reasonOf(t, d.Check(netip.MustParseAddrPort("9.9.9.9:443"))); got != ReasonOwn {
		t.Errorf("Options.Own given mapped: %q, want own", got)
	}

	// Refresh picks up a new interface address, keeps Options.Own, and keeps
	// the old set when reading fails.
	d.interfaceAddrs = func() ([]net.Addr, error) {
		return []net.Addr{
			&net.IPNet{IP: net.ParseIP("8.8.8.8"), Mask: net.CIDRMask(24, 32)},
			&net.IPAddr{IP: net.ParseIP("2606:4700::6810:1"), Zone: "eth0"},
		}, nil
	}
	if err := d.Refresh(); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"8.8.8.8:443", "[::ffff:8.8.8.8]:443", "[2606:4700::6810:1]:443", "9.9.9.9:443"} {
		if got := reasonOf(t, d.Check(netip.MustParseAddrPort(s))); got != ReasonOwn {
			t.Errorf("after Refresh %s: %q, want own", s, got)
		}
	}
	if err := d.Check(netip.MustParseAddrPort("8.8.8.9:443")); err != nil {
		t.Errorf("neighbour of an own address refused: %v", err)
	}
	d.interfaceAddrs = func() ([]net.Addr, error) { return nil, errors.New("no netlink") }
	if err := d.Refresh(); err == nil {
		t.Fatal("Refresh hid the error")
	}
	if got := reasonOf(t, d.Check(netip.MustParseAddrPort("8.8.8.8:443"))); got != ReasonOwn {
		t.Errorf("after failed Refresh: %q, want own", got)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	for name, o := range map[string]Options{
		"allow":   {Allow: []netip.Prefix{{}}},
		"deny":    {Deny: []netip.Prefix{{}}},
		"own":     {Own: []netip.Addr{{}}},
		"burst":   {FlowBurst: -1},
		"tracked": {MaxTracked: -1},
		"timeout": {Timeout: -1},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%s: New accepted %+v", name, o)
		}
	}
}

func TestRefusalMetrics(t *testing.T) {
	set := metrics.NewSet()
	d := newDialer(t, Options{Metrics: set})
	d.Check(netip.MustParseAddrPort("10.0.0.1:80"))
	d.Check(netip.MustParseAddrPort("[::ffff:10.0.0.2]:80"))
	d.Check(netip.MustParseAddrPort("8.8.8.8:25"))
	d.Check(netip.MustParseAddrPort("8.8.8.8:443"))
	var b strings.Builder
	set.WritePrometheus(&b)
	out := b.String()
	for _, want := range []string{
		`usipipo_egress_refused_total{reason="private"} 2`,
		`usipipo_egress_refused_total{reason="mail"} 1`,
		`usipipo_egress_refused_total{reason="loopback"} 0`,
		`usipipo_egress_refused_total{reason="ratelimit"} 0`,
		`usipipo_egress_flows_total 0`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q:\n%s", want, out)
		}
	}
	// A second dialer on the same set shares the counters instead of panicking.
	newDialer(t, Options{Metrics: set})
}

func TestDeniedErrorString(t *testing.T) {
	e := &DeniedError{Addr: netip.MustParseAddrPort("10.0.0.1:80"), Reason: ReasonPrivate}
	if got, want := e.Error(), "egress: refused 10.0.0.1:80 (private)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got := (&DeniedError{Reason: ReasonInvalid}).Error(); strings.Contains(got, "AddrPort") {
		t.Errorf("zero address printed as %q", got)
	}
}
