package wireguard

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/usipipo/usipipo/app/egress"
)

// Defaults applied by New to zero Options fields.
const (
	DefaultMTU          = 1420
	DefaultInterval     = time.Second
	DefaultSourceWindow = time.Hour
	DefaultUDPIdle      = 2 * time.Minute
	DefaultDNSTimeout   = 5 * time.Second
	DefaultTCPConnect   = 10 * time.Second
	DefaultIface        = "usipipo0"
	// DefaultParkAfter is how long a peer goes without a handshake before
	// it leaves the device until it knocks again (lazy.go).
	DefaultParkAfter = 5 * time.Minute
)

// minParkAfter outlasts a client's session (WireGuard's RejectAfterTime,
// 180 s): a parked peer's client must start with a handshake, which is
// what wakes the peer.
const minParkAfter = 190 * time.Second

// Mode is how a Server carries the peers' packets.
type Mode uint8

const (
	// ModeNetstack terminates the peers' flows in a userspace stack and
	// re-dials them through the egress dialer: no privileges needed.
	ModeNetstack Mode = iota
	// ModeTUN hands the peers' packets to the kernel through a TUN
	// interface; the node installs forwarding, NAT and the egress policy as
	// nftables rules. It needs CAP_NET_ADMIN and /dev/net/tun.
	ModeTUN
)

func (m Mode) String() string {
	if m == ModeTUN {
		return "tun"
	}
	return "netstack"
}

// Default tunnel pools (DESIGN.md, issue 3).
var (
	DefaultPoolV4 = netip.MustParsePrefix("10.66.0.0/16")
	DefaultPoolV6 = netip.MustParsePrefix("fd66::/64")
)

// Sentinel errors of New.
var (
	ErrNoPrivateKey = errors.New("wireguard: server private key must be 32 bytes")
	ErrNoConn       = errors.New("wireguard: a bound UDP socket is required")
	ErrNoEgress     = errors.New("wireguard: an egress dialer is required")
)

// Options configure a Server. PrivateKey, Conn and Egress are mandatory.
type Options struct {
	// PrivateKey is the node's raw 32-byte X25519 key (kept sealed by the node).
	PrivateKey []byte
	// Conn is the bound UDP socket peers send to (from the listener registry).
	// The Server uses it but does not close it: its owner does.
	Conn net.PacketConn
	// Egress dials every flow the peers open.
	Egress *egress.Dialer
	// PoolV4 and PoolV6 are the tunnel pools; their first host (app.Gateway)
	// is the gateway that answers ping and DNS. Peers in them cannot reach
	// each other.
	PoolV4, PoolV6 netip.Prefix
	// Resolver answers the peers' DNS queries; nil means net.DefaultResolver.
	Resolver *net.Resolver
	// MTU of the tunnel; 0 means DefaultMTU.
	MTU int
	// Interval is how often counters are read and limits enforced; 0 means
	// DefaultInterval.
	Interval time.Duration
	// SourceWindow is how long a peer's endpoint counts among its distinct
	// sources; 0 means DefaultSourceWindow.
	SourceWindow time.Duration
	// UDPIdle closes a UDP flow idle that long; 0 means DefaultUDPIdle.
	UDPIdle time.Duration
	// Logger receives the plane's logs; nil discards them.
	Logger *slog.Logger
	// Metrics receives usipipo_wireguard_* metrics; nil means a private set.
	Metrics *metrics.Set
	// Now is the clock for expiry and windows; nil means time.Now.
	Now func() time.Time
	// Mode is ModeNetstack (the zero value) or ModeTUN.
	Mode Mode
	// Iface names the kernel TUN interface of ModeTUN; "" means DefaultIface.
	Iface string
	// ParkAfter is how long an installed peer may go without a handshake
	// before it is parked off the device (it comes back on its client's
	// next handshake, unnoticed); 0 means DefaultParkAfter, negative never
	// parks (every peer stays on the device, ~37 KB each).
	ParkAfter time.Duration

	// dialDst maps a flow's destination before it is dialled. Tests use it:
	// wireguard-go's stock netstack client drops replies from loopback
	// sources, so they aim at TEST-NET-1 and land on 127.0.0.0/8.
	dialDst func(netip.AddrPort) netip.AddrPort
	// wakes is the overall budget of knocks examined a second (lazy.go);
	// 0 means wakesPerSecond. Tests lower it to flood past it cheaply.
	wakes int
	// firewall forces tun mode's firewall tool ("nft" or "iptables"); tests
	// use it to cover the iptables fallback on a host that has both.
	firewall string
}

func (o *Options) valid() error {
	switch {
	case len(o.PrivateKey) != 32:
		return ErrNoPrivateKey
	case o.Conn == nil:
		return ErrNoConn
	case o.Egress == nil:
		return ErrNoEgress
	}
	return nil
}

func (o *Options) defaults() {
	if !o.PoolV4.IsValid() {
		o.PoolV4 = DefaultPoolV4
	}
	if !o.PoolV6.IsValid() {
		o.PoolV6 = DefaultPoolV6
	}
	o.PoolV4, o.PoolV6 = o.PoolV4.Masked(), o.PoolV6.Masked()
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	if o.MTU == 0 {
		o.MTU = DefaultMTU
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.SourceWindow <= 0 {
		o.SourceWindow = DefaultSourceWindow
	}
	if o.UDPIdle <= 0 {
		o.UDPIdle = DefaultUDPIdle
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = metrics.NewSet()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ParkAfter == 0 {
		o.ParkAfter = DefaultParkAfter
	}
	if o.ParkAfter > 0 && o.ParkAfter < minParkAfter {
		o.ParkAfter = minParkAfter
	}
	if o.Iface == "" {
		o.Iface = DefaultIface
	}
	if o.dialDst == nil {
		o.dialDst = func(a netip.AddrPort) netip.AddrPort { return a }
	}
}

// gateway is the first host of a pool (app.Gateway).
func gateway(p netip.Prefix) netip.Addr { return p.Masked().Addr().Next() }
