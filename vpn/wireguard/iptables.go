package wireguard

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
)

// iptables is the firewall where nft is missing: the same rules as
// fwSpec.ruleset, as chains of our own (USIPIPO-*) that iptables-restore
// fills atomically per table, jumped to from the first rule of FORWARD,
// INPUT and nat POSTROUTING. Refusals jump to USIPIPO-EGRESS or
// USIPIPO-PEER, whose one DROP rule counts them.
type iptables struct{ v4, v6 ipt }

// ipt is one family's tools.
type ipt struct{ cmd, restore, save string }

// Our chains; a chain declared in a restore is flushed by it.
const (
	iptFwd    = "USIPIPO-FWD"
	iptIn     = "USIPIPO-IN"
	iptAdmit  = "USIPIPO-ADMIT"
	iptEgress = "USIPIPO-EGRESS"
	iptPeer   = "USIPIPO-PEER"
	iptNat    = "USIPIPO-NAT"
	// iptConns holds the per-peer connection limits (iptConnLimits);
	// iptConnsDrop counts their refusals.
	iptConns     = "USIPIPO-CONNS"
	iptConnsDrop = "USIPIPO-CONNSDROP"
)

// iptJumps are the built-in chains' jumps into ours.
var iptJumps = []struct{ table, chain, target string }{
	{"filter", "FORWARD", iptFwd}, {"filter", "INPUT", iptIn}, {"nat", "POSTROUTING", iptNat},
}

// errNoFirewall is returned where neither nft nor iptables exists.
var errNoFirewall = errors.New("wireguard tun mode: neither nft nor iptables found; install one (Debian: apt-get install nftables)")

func findIptables() (*iptables, error) {
	var t iptables
	for _, f := range []struct {
		p      *ipt
		prefix string
	}{{&t.v4, "iptables"}, {&t.v6, "ip6tables"}} {
		for _, tool := range []struct {
			dst  *string
			name string
		}{{&f.p.cmd, f.prefix}, {&f.p.restore, f.prefix + "-restore"}, {&f.p.save, f.prefix + "-save"}} {
			bin, err := exec.LookPath(tool.name)
			if err != nil {
				return nil, errNoFirewall
			}
			*tool.dst = bin
		}
	}
	return &t, nil
}

func (t *iptables) name() string { return "iptables" }

func (t *iptables) apply(ctx context.Context, f fwSpec) error {
	for _, fam := range []struct {
		p  ipt
		v6 bool
	}{{t.v4, false}, {t.v6, true}} {
		if _, err := runTool(ctx, fam.p.restore, f.iptRules(fam.v6), "--noflush", "-w"); err != nil {
			return err
		}
		for _, j := range iptJumps {
			deleteJumps(ctx, fam.p.cmd, j.table, j.chain, j.target)
			if _, err := runTool(ctx, fam.p.cmd, "", "-w", "-t", j.table, "-I", j.chain, "1", "-j", j.target); err != nil {
				return err
			}
		}
	}
	return nil
}

func (t *iptables) limitConns(ctx context.Context, _ string, c connLimits) error {
	for _, fam := range []struct {
		p  ipt
		v6 bool
	}{{t.v4, false}, {t.v6, true}} {
		if _, err := runTool(ctx, fam.p.restore, iptConnLimits(c, fam.v6), "--noflush", "-w"); err != nil {
			return err
		}
	}
	return nil
}

// deleteJumps removes every jump from chain to target (a crash may have
// left one, a restart must not add a second).
func deleteJumps(ctx context.Context, cmd, table, chain, target string) {
	for range 16 {
		if _, err := runTool(ctx, cmd, "", "-w", "-t", table, "-D", chain, "-j", target); err != nil {
			return
		}
	}
}

func (t *iptables) remove(ctx context.Context) error {
	var errs []error
	for _, p := range []ipt{t.v4, t.v6} {
		for _, j := range iptJumps {
			deleteJumps(ctx, p.cmd, j.table, j.chain, j.target)
		}
		for _, c := range []struct{ table, chain string }{{"filter", iptFwd}, {"filter", iptIn}, {"filter", iptAdmit},
			{"filter", iptConns}, {"filter", iptEgress}, {"filter", iptPeer}, {"filter", iptConnsDrop}, {"nat", iptNat}} {
			if _, err := runTool(ctx, p.cmd, "", "-w", "-t", c.table, "-F", c.chain); err != nil {
				continue // not there
			}
			if _, err := runTool(ctx, p.cmd, "", "-w", "-t", c.table, "-X", c.chain); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// counters sums the refusal chains' DROP counters over both families.
func (t *iptables) counters(ctx context.Context) (map[string]uint64, error) {
	out := map[string]uint64{}
	for _, p := range []ipt{t.v4, t.v6} {
		b, err := runTool(ctx, p.save, "", "-c", "-t", "filter")
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		for sc.Scan() {
			for chain, name := range map[string]string{iptEgress: "refused_egress", iptPeer: "refused_peer", iptConnsDrop: "refused_conns"} {
				if n, ok := iptDropCount(sc.Text(), chain); ok {
					out[name] += n
				}
			}
		}
	}
	return out, nil
}

// iptDropCount reads "[packets:bytes] -A CHAIN -j DROP".
func iptDropCount(line, chain string) (uint64, bool) {
	cnt, rule, ok := strings.Cut(line, " ")
	if !ok || rule != "-A "+chain+" -j DROP" || !strings.HasPrefix(cnt, "[") {
		return 0, false
	}
	pk, _, ok := strings.Cut(strings.Trim(cnt, "[]"), ":")
	n, err := strconv.ParseUint(pk, 10, 64)
	return n, ok && err == nil
}

// iptRules renders one family's iptables-restore input.
func (f fwSpec) iptRules(v6 bool) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	pool, gw, icmp, out := f.pool4, f.gw4, "-p icmp --icmp-type echo-request", f.out4
	if v6 {
		pool, gw, icmp, out = f.pool6, f.gw6, "-p ipv6-icmp --icmpv6-type echo-request", f.out6
	}
	fam := func(ps []netip.Prefix) []netip.Prefix {
		v4s, v6s := split(ps)
		if v6 {
			return mergePrefixes(v6s)
		}
		return mergePrefixes(v4s)
	}
	p := f.policy
	def := append(append([]netip.Prefix(nil), p.Default...), embedded(p.Default)...)
	ifc := f.iface
	w("*filter")
	for _, c := range []string{iptFwd, iptIn, iptAdmit, iptEgress, iptPeer, iptConns, iptConnsDrop} {
		w(":%s - [0:0]", c)
	}
	w("-A %s -j DROP", iptEgress)
	w("-A %s -j DROP", iptPeer)
	w("-A %s -j DROP", iptConnsDrop)
	w("-A %s -i %s -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu", iptFwd, ifc)
	w("-A %s -o %s -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu", iptFwd, ifc)
	w("-A %s -i %s -o %s -j %s", iptFwd, ifc, ifc, iptPeer)
	w("-A %s -o %s -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", iptFwd, ifc)
	w("-A %s -o %s -j DROP", iptFwd, ifc)
	w("-A %s ! -i %s -j RETURN", iptFwd, ifc)
	w("-A %s -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", iptFwd)
	w("-A %s -m conntrack --ctstate INVALID -j DROP", iptFwd)
	w("-A %s -d %s -j %s", iptFwd, pool, iptPeer)
	policy := func(chain, allowTarget string) {
		for _, d := range fam(p.Deny) {
			w("-A %s -d %s -j %s", chain, d, iptEgress)
		}
		if !p.AllowMail {
			w("-A %s -p tcp -m multiport --dports 25,465,587 -j %s", chain, iptEgress)
			w("-A %s -p udp -m multiport --dports 25,465,587 -j %s", chain, iptEgress)
		}
		for _, a := range fam(p.Allow) {
			w("-A %s -d %s -j %s", chain, a, allowTarget)
		}
	}
	policy(iptFwd, iptAdmit)
	for _, d := range fam(append(ownPrefixes(p.Own, def), def...)) {
		w("-A %s -d %s -j %s", iptFwd, d, iptEgress)
	}
	w("-A %s -j %s", iptFwd, iptAdmit)
	w("-A %s -m conntrack --ctstate NEW -j %s", iptAdmit, iptConns)
	if r := p.FlowsPerSecond; r > 0 {
		name := "usipipo4"
		if v6 {
			name = "usipipo6"
		}
		w("-A %s -m conntrack --ctstate NEW -m hashlimit --hashlimit-above %d/sec --hashlimit-burst %d --hashlimit-mode srcip --hashlimit-name %s -j %s",
			iptAdmit, max(int(r), 1), max(p.FlowBurst, 1), name, iptEgress)
	}
	w("-A %s -j ACCEPT", iptAdmit)
	w("-A %s ! -i %s -j RETURN", iptIn, ifc)
	w("-A %s -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", iptIn)
	w("-A %s -d %s -p udp --dport 53 -j ACCEPT", iptIn, gw)
	w("-A %s -d %s -p tcp --dport 53 -j ACCEPT", iptIn, gw)
	w("-A %s -d %s %s -j ACCEPT", iptIn, gw, icmp)
	w("-A %s -d %s -j %s", iptIn, pool, iptPeer)
	policy(iptIn, "ACCEPT")
	w("-A %s -j %s", iptIn, iptEgress)
	w("COMMIT")
	w("*nat")
	w(":%s - [0:0]", iptNat)
	for _, o := range out {
		w("-A %s -s %s -o %s -j MASQUERADE", iptNat, pool, o)
	}
	w("COMMIT")
	return b.String()
}

// runTool runs a firewall tool with stdin.
func runTool(ctx context.Context, bin, stdin string, args ...string) ([]byte, error) {
	return (&nftables{bin: bin}).run(ctx, stdin, args...)
}
