package egress

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// Check applies the policy alone to one destination: nil, or a *DeniedError.
// It is for unconnected UDP relays that send to many targets from one socket;
// it does not allocate unless it refuses.
func (d *Dialer) Check(ap netip.AddrPort) error {
	if r := d.judge(ap); r != allowed {
		d.refuse(r)
		return &DeniedError{Addr: ap, Reason: r.String()}
	}
	return nil
}

// CheckFor is Check for a new flow of credential cred: it first takes one token
// from cred's new-flow budget (ErrRateLimited when empty), then applies the
// policy. A UDP relay calls it when it opens a flow to a new target.
func (d *Dialer) CheckFor(cred string, ap netip.AddrPort) error {
	if err := d.take(cred); err != nil {
		return err
	}
	if err := d.Check(ap); err != nil {
		return err
	}
	d.flowOpened()
	return nil
}

// DialContext connects to address on network (tcp, tcp4, tcp6, udp, udp4 or
// udp6) if the policy allows the address it actually connects to. A name is
// resolved with Options.Resolver and each resolved address is judged at the
// socket, before connect; refused ones are skipped like unreachable ones. A
// refusal is reported as an error wrapping a *DeniedError.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6":
	default:
		return nil, fmt.Errorf("egress: network %q not supported", network)
	}
	// Fail fast on literals; the socket hook judges again, and judges names.
	if ap, err := netip.ParseAddrPort(address); err == nil {
		if err := d.Check(ap); err != nil {
			return nil, err
		}
	}
	c, err := d.net.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	d.flowOpened()
	return c, nil
}

// DialFor is DialContext for a new flow of credential cred: it first takes one
// token from cred's new-flow budget and returns ErrRateLimited when it is empty.
func (d *Dialer) DialFor(ctx context.Context, cred, network, address string) (net.Conn, error) {
	if err := d.take(cred); err != nil {
		return nil, err
	}
	return d.DialContext(ctx, network, address)
}

// ConnectTimeout is how long a dial may take, resolution included: for
// callers that connect a socket themselves after CheckFor.
func (d *Dialer) ConnectTimeout() time.Duration { return d.net.Timeout }

// take takes one new-flow token for cred.
func (d *Dialer) take(cred string) error {
	if d.flows == nil || d.flows.allow(cred, d.now()) {
		return nil
	}
	d.refuse(rRateLimit)
	return ErrRateLimited
}

// control is the net.Dialer.Control hook: it runs after the socket is created
// and before connect, with the resolved address. Anything it cannot parse is refused.
func (d *Dialer) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		d.refuse(rInvalid)
		return &DeniedError{Reason: ReasonInvalid}
	}
	return d.Check(ap)
}

// HTTPClient returns an HTTP client whose every connection, redirects included,
// is dialled through the policy. It never uses an environment proxy (the proxy
// would dial for it). timeout bounds each whole request; 0 means 30s. Keep the
// client: each call builds a new transport and connection pool.
func (d *Dialer) HTTPClient(timeout time.Duration) *http.Client {
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           d.DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          64,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
		},
	}
}
