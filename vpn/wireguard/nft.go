package wireguard

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// nftTimeout bounds one nft run.
const nftTimeout = 10 * time.Second

// firewall installs tun mode's rules: nftables, or iptables where nft is
// missing.
type firewall interface {
	name() string
	apply(ctx context.Context, f fwSpec) error
	remove(ctx context.Context) error
	// counters reads the refusals by fwCounters name.
	counters(ctx context.Context) (map[string]uint64, error)
	// limitConns installs the peers' connection limits (after apply).
	limitConns(ctx context.Context, iface string, c connLimits) error
}

// findFirewall picks nft, else iptables; prefer forces one ("nft" or
// "iptables", for tests).
func findFirewall(prefer string) (firewall, error) {
	if prefer != "iptables" {
		if n, err := findNft(); err == nil {
			return n, nil
		}
	}
	if prefer != "nft" {
		if t, err := findIptables(); err == nil {
			return t, nil
		}
	}
	return nil, errNoFirewall
}

// nftables drives the nft tool: one script applies the whole table in one
// transaction, one command removes it.
type nftables struct{ bin string }

func findNft() (*nftables, error) {
	bin, err := exec.LookPath("nft")
	if err != nil {
		return nil, errNoFirewall
	}
	return &nftables{bin: bin}, nil
}

func (n *nftables) run(ctx context.Context, stdin string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, nftTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, n.bin, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", filepath.Base(n.bin), strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

func (n *nftables) name() string { return "nftables" }

// apply replaces the table in one transaction (see fwSpec.ruleset).
func (n *nftables) apply(ctx context.Context, f fwSpec) error {
	_, err := n.run(ctx, f.ruleset(), "-f", "-")
	return err
}

func (n *nftables) limitConns(ctx context.Context, _ string, c connLimits) error {
	_, err := n.run(ctx, nftConnLimits(c), "-f", "-")
	return err
}

// remove deletes the table; a missing one is not an error.
func (n *nftables) remove(ctx context.Context) error {
	_, err := n.run(ctx, fmt.Sprintf("table inet %s\ndelete table inet %s\n", fwTable, fwTable), "-f", "-")
	return err
}

// counters reads the table's named counters: packets by counter name.
func (n *nftables) counters(ctx context.Context) (map[string]uint64, error) {
	out, err := n.run(ctx, "", "-j", "list", "counters", "table", "inet", fwTable)
	if err != nil {
		return nil, err
	}
	return parseNftCounters(out)
}

// parseNftCounters reads `nft -j list counters` output.
func parseNftCounters(b []byte) (map[string]uint64, error) {
	var doc struct {
		Nftables []struct {
			Counter *struct {
				Name    string `json:"name"`
				Table   string `json:"table"`
				Packets uint64 `json:"packets"`
			} `json:"counter"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("reading nft counters: %w", err)
	}
	out := map[string]uint64{}
	for _, o := range doc.Nftables {
		if c := o.Counter; c != nil && c.Table == fwTable {
			out[c.Name] = c.Packets
		}
	}
	return out, nil
}
