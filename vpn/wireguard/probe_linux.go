//go:build linux

package wireguard

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// capNetAdmin is CAP_NET_ADMIN's bit in the capability sets.
const capNetAdmin = 12

// TUNCheck says what tun mode needs and whether this process has it.
// Device and Capability decide whether a TUN interface can be created
// (what --wg-mode auto looks at); a firewall tool (nft, else iptables) is
// needed for the rules; the
// forwarding sysctls are set at start where they are off and writable.
type TUNCheck struct {
	Device     error // /dev/net/tun cannot be opened
	Capability error // CAP_NET_ADMIN is not effective
	Firewall   error // neither nft nor iptables
	// FirewallTool is the one tun mode would use: nftables or iptables.
	FirewallTool string
	Forwarding   []SysctlState
}

// SysctlState is one forwarding sysctl: its value and whether this process
// may change it.
type SysctlState struct {
	Key, Value string
	Writable   bool
}

// Err is the first reason tun mode cannot start, or nil.
func (c TUNCheck) Err() error {
	for _, err := range []error{c.Device, c.Capability, c.Firewall} {
		if err != nil {
			return err
		}
	}
	for _, s := range c.Forwarding {
		if s.Value != "1" && !s.Writable {
			return fmt.Errorf("wireguard tun mode: %s is %s and this process cannot set it (set it to 1 with sysctl)", s.Key, s.Value)
		}
	}
	return nil
}

// CanCreateTUN is what --wg-mode auto asks: may this process create a TUN
// interface? The error says why not.
func (c TUNCheck) CanCreateTUN() error { return errors.Join(c.Device, c.Capability) }

// CheckTUN inspects this process and host for tun mode.
func CheckTUN() TUNCheck {
	var c TUNCheck
	if f, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0); err != nil {
		c.Device = fmt.Errorf("cannot open /dev/net/tun: %w", err)
	} else {
		f.Close()
	}
	if ok, err := hasCapability(capNetAdmin); err != nil {
		c.Capability = fmt.Errorf("cannot read this process's capabilities: %w", err)
	} else if !ok {
		c.Capability = errors.New("CAP_NET_ADMIN is not in this process's effective capabilities")
	}
	if fw, err := findFirewall(""); err != nil {
		c.Firewall = err
	} else {
		c.FirewallTool = fw.name()
	}
	for _, k := range []string{sysctlForward4, sysctlForward6} {
		v, err := readSysctl(k)
		if err != nil {
			continue // IPv6 disabled: nothing to forward
		}
		c.Forwarding = append(c.Forwarding, SysctlState{Key: k, Value: v, Writable: sysctlWritable(k)})
	}
	return c
}

// hasCapability reads CapEff from /proc/self/status.
func hasCapability(bit uint) (bool, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return false, err
			}
			return mask&(1<<bit) != 0, nil
		}
	}
	return false, errors.New("no CapEff line")
}

// Sysctls tun mode needs.
const (
	sysctlForward4 = "net.ipv4.ip_forward"
	sysctlForward6 = "net.ipv6.conf.all.forwarding"
)

// sysctlPath maps a key to its file; an interface name in it may hold dots.
func sysctlPath(key string) string {
	if ifc, ok := strings.CutPrefix(key, "net.ipv6.conf."); ok {
		if ifc, ok := strings.CutSuffix(ifc, ".accept_ra"); ok {
			return filepath.Join("/proc/sys/net/ipv6/conf", ifc, "accept_ra")
		}
	}
	return filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
}

func readSysctl(key string) (string, error) {
	b, err := os.ReadFile(sysctlPath(key))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func writeSysctl(key, v string) error {
	if err := os.WriteFile(sysctlPath(key), []byte(v+"\n"), 0o644); err != nil {
		return fmt.Errorf("setting %s to %s: %w", key, v, err)
	}
	return nil
}

func sysctlWritable(key string) bool {
	f, err := os.OpenFile(sysctlPath(key), os.O_WRONLY, 0)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// sysctlChange is a sysctl the node set, to put back on close.
type sysctlChange struct{ key, was, now string }

// enableForwarding turns on IPv4 and IPv6 forwarding where they are off.
// Forwarding makes the kernel ignore router advertisements on interfaces
// with accept_ra=1, which would drop an autoconfigured IPv6 default route:
// those of the IPv6 uplinks are raised to 2 first. It returns what it
// changed, even on error, so that the caller can put it back.
func enableForwarding(out6 []string) ([]sysctlChange, error) {
	var changed []sysctlChange
	set := func(key, want string, only func(string) bool) error {
		v, err := readSysctl(key)
		if err != nil || !only(v) {
			return nil // missing (IPv6 disabled), or already as wanted
		}
		if err := writeSysctl(key, want); err != nil {
			return fmt.Errorf("wireguard tun mode: %s is %s and cannot be set to %s (set it with sysctl): %w", key, v, want, err)
		}
		changed = append(changed, sysctlChange{key: key, was: v, now: want})
		return nil
	}
	off := func(v string) bool { return v == "0" }
	if err := set(sysctlForward4, "1", off); err != nil {
		return changed, err
	}
	if v, err := readSysctl(sysctlForward6); err == nil && v == "0" {
		for _, ifc := range out6 {
			if err := set("net.ipv6.conf."+ifc+".accept_ra", "2", func(v string) bool { return v == "1" }); err != nil {
				return changed, err
			}
		}
	}
	return changed, set(sysctlForward6, "1", off)
}
