package egress

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// Defaults applied by New to zero Options fields.
const (
	DefaultFlowsPerSecond = 50
	DefaultFlowBurst      = 200
	DefaultMaxTracked     = 1 << 16
	DefaultTimeout        = 10 * time.Second
)

// Options configure a Dialer. The zero value is the default policy.
type Options struct {
	// Allow lists destinations the default deny must not refuse (--egress-allow),
	// e.g. 127.0.0.1/32 in tests. It does not override Deny or the mail ports.
	Allow []netip.Prefix
	// Deny lists destinations always refused (--egress-deny); it wins over everything.
	Deny []netip.Prefix
	// Own adds the node's addresses that its interfaces do not show, such as a
	// public address behind 1:1 NAT.
	Own []netip.Addr
	// AllowMail permits ports 25, 465 and 587. Off by default: a VPS that relays
	// spam gets suspended.
	AllowMail bool

	// FlowsPerSecond is the sustained new-flow rate per credential (DialFor,
	// CheckFor); 0 means DefaultFlowsPerSecond, negative means unlimited.
	FlowsPerSecond float64
	// FlowBurst is the per-credential burst; 0 means DefaultFlowBurst.
	FlowBurst int
	// MaxTracked caps the credentials whose buckets are kept at once; 0 means
	// DefaultMaxTracked.
	MaxTracked int

	// Resolver resolves names; nil means net.DefaultResolver.
	Resolver *net.Resolver
	// Timeout bounds each connect, resolution included; 0 means DefaultTimeout.
	Timeout time.Duration
	// Metrics receives the egress counters; nil means none.
	Metrics *metrics.Set
	// Now is the clock of the flow limiter; nil means time.Now.
	Now func() time.Time
}

// Dialer dials outbound connections under the egress policy. It is safe for
// concurrent use; Refresh may run concurrently with dials.
type Dialer struct {
	allow, deny []netip.Prefix // normalised; read-only after New
	allowMail   bool
	extraOwn    []netip.Addr // Options.Own

	// own is the set of the node's addresses, replaced as a whole by Refresh.
	own            atomic.Pointer[addrSet]
	interfaceAddrs func() ([]net.Addr, error) // net.InterfaceAddrs; tests replace it

	net   net.Dialer
	flows *flowLimiter // nil when unlimited
	now   func() time.Time

	flowsTotal *metrics.Counter             // nil without Options.Metrics
	refused    [numReasons]*metrics.Counter // nil without Options.Metrics
}

// New checks opts, applies the defaults, reads the interface addresses and
// returns a Dialer.
func New(opts Options) (*Dialer, error) {
	if err := opts.valid(); err != nil {
		return nil, err
	}
	d := &Dialer{
		allowMail:      opts.AllowMail,
		interfaceAddrs: net.InterfaceAddrs,
		now:            opts.Now,
	}
	for _, p := range opts.Allow {
		d.allow = append(d.allow, normalizePrefix(p))
	}
	for _, p := range opts.Deny {
		d.deny = append(d.deny, normalizePrefix(p))
	}
	d.extraOwn = slices.Clone(opts.Own)
	if d.now == nil {
		d.now = time.Now
	}
	if opts.FlowsPerSecond >= 0 {
		fps, burst, tracked := opts.FlowsPerSecond, opts.FlowBurst, opts.MaxTracked
		if fps == 0 {
			fps = DefaultFlowsPerSecond
		}
		if burst == 0 {
			burst = DefaultFlowBurst
		}
		if tracked == 0 {
			tracked = DefaultMaxTracked
		}
		d.flows = newFlowLimiter(fps, burst, tracked)
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	d.net = net.Dialer{
		Timeout:  timeout,
		Resolver: opts.Resolver,
		Control:  d.control,
	}
	if s := opts.Metrics; s != nil {
		d.flowsTotal = s.GetOrCreateCounter("usipipo_egress_flows_total")
		for r := allowed + 1; r < numReasons; r++ {
			d.refused[r] = s.GetOrCreateCounter(`usipipo_egress_refused_total{reason="` + r.String() + `"}`)
		}
	}
	if err := d.Refresh(); err != nil {
		return nil, err
	}
	return d, nil
}

func (o *Options) valid() error {
	for _, p := range o.Allow {
		if !p.IsValid() {
			return errors.New("egress: invalid allow prefix")
		}
	}
	for _, p := range o.Deny {
		if !p.IsValid() {
			return errors.New("egress: invalid deny prefix")
		}
	}
	for _, a := range o.Own {
		if !a.IsValid() {
			return errors.New("egress: invalid own address")
		}
	}
	switch {
	case math.IsNaN(o.FlowsPerSecond) || math.IsInf(o.FlowsPerSecond, 0):
		return errors.New("egress: FlowsPerSecond must be finite")
	case o.FlowBurst < 0:
		return errors.New("egress: FlowBurst must not be negative")
	case o.MaxTracked < 0:
		return errors.New("egress: MaxTracked must not be negative")
	case o.Timeout < 0:
		return errors.New("egress: Timeout must not be negative")
	}
	return nil
}

// Refresh re-reads the node's interface addresses (plus Options.Own) as its own
// addresses. On error the previous set stays in force.
func (d *Dialer) Refresh() error {
	addrs, err := d.interfaceAddrs()
	if err != nil {
		return fmt.Errorf("egress: reading interface addresses: %w", err)
	}
	own := slices.Clone(d.extraOwn)
	for _, a := range addrs {
		var ip net.IP
		switch a := a.(type) {
		case *net.IPNet:
			ip = a.IP
		case *net.IPAddr:
			ip = a.IP
		}
		if x, ok := netip.AddrFromSlice(ip); ok {
			own = append(own, x)
		}
	}
	d.own.Store(newAddrSet(own))
	return nil
}

// refuse counts a refusal for r.
func (d *Dialer) refuse(r reason) {
	if c := d.refused[r]; c != nil {
		c.Inc()
	}
}

// flowOpened counts a new flow.
func (d *Dialer) flowOpened() {
	if d.flowsTotal != nil {
		d.flowsTotal.Inc()
	}
}
