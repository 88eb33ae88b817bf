package wireguard

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"strings"
)

// ClientConfig is the wg-quick .conf a user imports.
type ClientConfig struct {
	Private    []byte
	PSK        []byte
	AddrV4     string // peer tunnel address, e.g. 10.66.0.2
	AddrV6     string
	DNS        []string
	ServerKey  string // base64 public key of the node
	Endpoint   string // host:port from --public-host and --wg-listen
	AllowedIPs []netip.Prefix
	Keepalive  int
}

// Render writes the configuration in wg-quick's format.
func (c ClientConfig) Render() string {
	var b strings.Builder
	b.WriteString("[Interface]\n")
	fmt.Fprintf(&b, "PrivateKey = %s\n", base64.StdEncoding.EncodeToString(c.Private))
	var addrs []string
	if c.AddrV4 != "" {
		addrs = append(addrs, c.AddrV4+"/32")
	}
	if c.AddrV6 != "" {
		addrs = append(addrs, c.AddrV6+"/128")
	}
	fmt.Fprintf(&b, "Address = %s\n", strings.Join(addrs, ", "))
	if len(c.DNS) > 0 {
		fmt.Fprintf(&b, "DNS = %s\n", strings.Join(c.DNS, ", "))
	}
	b.WriteString("\n[Peer]\n")
	fmt.Fprintf(&b, "PublicKey = %s\n", c.ServerKey)
	fmt.Fprintf(&b, "PresharedKey = %s\n", base64.StdEncoding.EncodeToString(c.PSK))
	fmt.Fprintf(&b, "Endpoint = %s\n", c.Endpoint)
	allowed := c.AllowedIPs
	if len(allowed) == 0 {
		allowed = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
	}
	ps := make([]string, len(allowed))
	for i, p := range allowed {
		ps[i] = p.String()
	}
	fmt.Fprintf(&b, "AllowedIPs = %s\n", strings.Join(ps, ", "))
	if c.Keepalive > 0 {
		fmt.Fprintf(&b, "PersistentKeepalive = %d\n", c.Keepalive)
	}
	return b.String()
}
