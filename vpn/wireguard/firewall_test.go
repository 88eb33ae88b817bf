package wireguard

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/usipipo/usipipo/app/egress"
)

func TestRulesetFollowsThePolicy(t *testing.T) {
	d, err := egress.New(egress.Options{Allow: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
		Deny: []netip.Prefix{netip.MustParsePrefix("8.8.8.0/24")}, Own: []netip.Addr{netip.MustParseAddr("192.0.2.77")}})
	if err != nil {
		t.Fatal(err)
	}
	f := fwSpec{iface: "usipipo0", pool4: DefaultPoolV4, pool6: DefaultPoolV6, gw4: gateway(DefaultPoolV4), gw6: gateway(DefaultPoolV6),
		out4: []string{"eth0"}, policy: d.Rules()}
	rs := f.ruleset()
	for _, want := range []string{
		"table inet usipipo\ndelete table inet usipipo\n", // replaces, never duplicates
		"set deny4 { type ipv4_addr; flags interval; auto-merge; elements = { 8.8.8.0/24 }; }",
		"set allow4 { type ipv4_addr; flags interval; auto-merge; elements = { 198.51.100.0/24 }; }",
		"th dport { 25, 465, 587 } counter name refused_egress drop",
		"::ffff:10.0.0.0/104", // the IPv4-mapped form of a private range
		`ip saddr 10.66.0.0/16 oifname { "eth0" } masquerade`,
		`oifname "usipipo0" counter name refused_peer drop`,
		"limit rate over 50/second burst 200 packets",
	} {
		if !strings.Contains(rs, want) {
			t.Errorf("ruleset lacks %q:\n%s", want, rs)
		}
	}
	// Precedence: deny, mail, allow, then own and default.
	order := []string{"@deny4", "dport { 25", "@allow4 goto admit", "@own4", "@default4"}
	last := -1
	for _, w := range order {
		i := strings.Index(rs, w)
		if i < last {
			t.Errorf("%q out of order", w)
		}
		last = i
	}
	if strings.Contains(rs, "masquerade\n\t\tip6") {
		t.Error("IPv6 masquerade without an IPv6 default route")
	}
}

func TestParseNftCounters(t *testing.T) {
	got, err := parseNftCounters([]byte(`{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"counter": {"family": "inet", "name": "refused_egress", "table": "usipipo", "handle": 8, "packets": 12, "bytes": 720}}, {"counter": {"family": "inet", "name": "x", "table": "other", "packets": 5}}]}`))
	if err != nil || got["refused_egress"] != 12 || len(got) != 1 {
		t.Fatalf("%v %v", got, err)
	}
	if _, err := parseNftCounters([]byte("not json")); err == nil {
		t.Fatal("bad output parsed")
	}
}

func TestPacketAddrs(t *testing.T) {
	v4 := make([]byte, 20)
	v4[0] = 0x45
	copy(v4[12:], []byte{10, 66, 0, 2, 1, 1, 1, 1})
	src, dst, ok := packetAddrs(v4)
	if !ok || src != netip.MustParseAddr("10.66.0.2") || dst != netip.MustParseAddr("1.1.1.1") {
		t.Fatalf("%v %v %v", src, dst, ok)
	}
	if _, _, ok := packetAddrs(v4[:19]); ok {
		t.Fatal("short packet parsed")
	}
	v6 := make([]byte, 40)
	v6[0] = 0x60
	v6[8], v6[9], v6[23] = 0xfd, 0x66, 2
	if src, _, ok := packetAddrs(v6); !ok || src != netip.MustParseAddr("fd66::2") {
		t.Fatalf("%v %v", src, ok)
	}
}

func FuzzPacketAddrs(f *testing.F) {
	f.Add([]byte{0x45, 0, 0, 20, 0, 0, 0, 0, 64, 6, 0, 0, 10, 66, 0, 2, 1, 1, 1, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		src, dst, ok := packetAddrs(b)
		if ok && (!src.IsValid() || !dst.IsValid() || src.Is4() != dst.Is4()) {
			t.Fatalf("%v %v", src, dst)
		}
	})
}

func TestConnLimitRules(t *testing.T) {
	c := connLimits{netip.MustParseAddr("10.66.0.3"): 5, netip.MustParseAddr("10.66.0.2"): 5,
		netip.MustParseAddr("fd66::2"): 5, netip.MustParseAddr("10.66.0.9"): 1}
	nft := nftConnLimits(c)
	for _, want := range []string{
		"flush chain inet usipipo conns\n",
		"add element inet usipipo mc5_4 { 10.66.0.2, 10.66.0.3 }",
		"add rule inet usipipo conns ip saddr @mc5_4 ct state new add @cc5_4 { ip saddr ct count over 5 } counter name refused_conns drop",
		"add rule inet usipipo conns ip6 saddr @mc5_6 ct state new add @cc5_6 { ip6 saddr ct count over 5 }",
		"ct count over 1 }",
	} {
		if !strings.Contains(nft, want) {
			t.Errorf("nft conn limits lack %q:\n%s", want, nft)
		}
	}
	if strings.Contains(nft, "delete set inet usipipo cc") || strings.Contains(nft, "flush set inet usipipo cc") {
		t.Error("the counting sets must survive a change of limits")
	}
	ipt := iptConnLimits(c, false)
	if !strings.Contains(ipt, "-A USIPIPO-CONNS -s 10.66.0.2 -m conntrack --ctstate NEW -m connlimit --connlimit-above 5 --connlimit-mask 32 -j USIPIPO-CONNSDROP") ||
		strings.Contains(ipt, "fd66") || strings.Count(ipt, "-A USIPIPO-CONNS ") != 3 {
		t.Errorf("iptables conn limits:\n%s", ipt)
	}
	if nft0 := nftConnLimits(connLimits{}); nft0 != "flush chain inet usipipo conns\n" {
		t.Errorf("no limits: %q", nft0)
	}
}
