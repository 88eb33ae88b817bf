package egress

import (
	"net/netip"
	"slices"
	"testing"
)

func TestRulesMirrorThePolicy(t *testing.T) {
	d, err := New(Options{Allow: []netip.Prefix{netip.MustParsePrefix("::ffff:127.0.0.1/128")}, Own: []netip.Addr{netip.MustParseAddr("203.0.113.9")}})
	if err != nil {
		t.Fatal(err)
	}
	r := d.Rules()
	if !slices.Contains(r.Allow, netip.MustParsePrefix("127.0.0.1/32")) {
		t.Errorf("allow not normalised: %v", r.Allow)
	}
	if !slices.Contains(r.Own, netip.MustParseAddr("203.0.113.9")) || !slices.Contains(r.Own, netip.MustParseAddr("127.0.0.1")) {
		t.Errorf("own: %v", r.Own)
	}
	if len(r.Default) != len(defaultDeny) || r.FlowsPerSecond != DefaultFlowsPerSecond || r.FlowBurst != DefaultFlowBurst || r.AllowMail {
		t.Errorf("rules: %+v", r)
	}
	for _, a := range r.Own {
		if d.Check(netip.AddrPortFrom(a, 80)) == nil && !slices.ContainsFunc(r.Allow, func(p netip.Prefix) bool { return p.Contains(a) }) {
			t.Errorf("own address %v is not refused by the dialer", a)
		}
	}
}
