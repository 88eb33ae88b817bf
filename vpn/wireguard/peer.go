package wireguard

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/usipipo/usipipo/app/plane"
)

// peerState is what the enforcement decided for a peer.
type peerState uint8

const (
	serving   peerState = iota
	throttled           // over budget, held to Limits.ThrottleBps
	cut                 // expired or over budget: off the device
)

// Errors a flow can be refused with (counted by reason).
var (
	errTooManyConns = errors.New("too many connections")
	errPeerGone     = errors.New("peer removed")
)

// peer is one installed credential. Its fields are guarded by Server.mu,
// except live, which the forwarders share.
type peer struct {
	id      string
	version uint64
	keyHex  string
	pskHex  string
	v4, v6  netip.Addr
	cred    plane.Credential // limits, budget and mark; Secret cleared

	key      [32]byte // the raw public key
	onDevice bool
	parked   bool      // installed but off the device until it knocks (lazy.go)
	since    time.Time // when it was last put on the device
	state    peerState
	base     traffic // counts of earlier installs on this device
	last     traffic // the device's counts of the current install
	lastHS   time.Time
	endpoint netip.AddrPort // where the client was last heard from
	sources  map[netip.Addr]time.Time

	live *live
}

type traffic struct{ rx, tx uint64 }

func (t traffic) add(u traffic) traffic { return traffic{t.rx + u.rx, t.tx + u.tx} }

// total is the plane's cumulative count for the peer in this epoch.
func (p *peer) total() traffic { return p.base.add(p.last) }

// newPeer decodes what the device needs from a credential.
func newPeer(c plane.Credential) (*peer, error) {
	pub, err := base64.StdEncoding.DecodeString(c.Public)
	if err != nil || len(pub) != 32 {
		return nil, fmt.Errorf("credential %s: bad public key", c.ID)
	}
	sec, err := ParseSecret(c.Secret)
	if err != nil {
		return nil, fmt.Errorf("credential %s: %w", c.ID, err)
	}
	p := &peer{id: c.ID, version: c.Version, keyHex: hex.EncodeToString(pub), pskHex: hex.EncodeToString(sec.PSK),
		key: [32]byte(pub), sources: map[netip.Addr]time.Time{}, live: newLive(c.ID)}
	if p.v4, err = hostAddr(c.AddrV4, true); err != nil {
		return nil, fmt.Errorf("credential %s: %w", c.ID, err)
	}
	if p.v6, err = hostAddr(c.AddrV6, false); err != nil {
		return nil, fmt.Errorf("credential %s: %w", c.ID, err)
	}
	if !p.v4.IsValid() && !p.v6.IsValid() {
		return nil, fmt.Errorf("credential %s: no tunnel address", c.ID)
	}
	p.setCred(c)
	return p, nil
}

func hostAddr(s string, v4 bool) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Is4() != v4 || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("bad tunnel address %q", s)
	}
	return a, nil
}

func (p *peer) setCred(c plane.Credential) {
	c.Secret = nil
	p.cred = c
	p.live.maxConns.Store(int64(c.Limits.MaxConns))
}

// used is the peer's count against its budget.
func (p *peer) used(epoch string) uint64 {
	t := p.total()
	u := t.rx + t.tx
	if p.cred.MarkEpoch == epoch {
		if p.cred.Mark >= u {
			return 0
		}
		u -= p.cred.Mark
	}
	return u
}

// decide is the state the peer's limits call for at now.
func (p *peer) decide(now time.Time, epoch string) peerState {
	l := p.cred.Limits
	if !l.ExpiresAt.IsZero() && !now.Before(l.ExpiresAt) {
		return cut
	}
	if p.cred.Budget != plane.NoBudget && p.used(epoch) >= p.cred.Budget {
		if l.ThrottleBps > 0 {
			return throttled
		}
		return cut
	}
	return serving
}

// speed is the byte rate the peer's flows are held to; 0 is unlimited.
func (p *peer) speed() uint64 {
	l := p.cred.Limits
	if p.state == throttled {
		if l.SpeedBps > 0 {
			return min(l.SpeedBps, l.ThrottleBps)
		}
		return l.ThrottleBps
	}
	return l.SpeedBps
}

// uapiAdd configures the peer on the device (add or update in place).
func (p *peer) uapiAdd(b *strings.Builder) {
	fmt.Fprintf(b, "public_key=%s\npreshared_key=%s\nreplace_allowed_ips=true\n", p.keyHex, p.pskHex)
	if p.v4.IsValid() {
		fmt.Fprintf(b, "allowed_ip=%s/32\n", p.v4)
	}
	if p.v6.IsValid() {
		fmt.Fprintf(b, "allowed_ip=%s/128\n", p.v6)
	}
}

// uapiRemove takes the peer off the device.
func (p *peer) uapiRemove(b *strings.Builder) {
	fmt.Fprintf(b, "public_key=%s\nremove=true\n", p.keyHex)
}

// live is the part of a peer the forwarders use: its speed limiters, its
// connection limit and its open flows.
type live struct {
	id       string
	maxConns atomic.Int64
	up, down *rate.Limiter
	limited  atomic.Bool // a speed is set: the buckets apply (tun mode meters packets, forwarders wait)
	// left is what the peer may still relay before its budget is spent
	// (noBudget when there is none to watch); kick asks the server to
	// enforce at once, so that a cap is not overshot by an interval's
	// worth of traffic.
	left   atomic.Int64
	kick   func()
	mu     sync.Mutex
	flows  map[*flow]struct{}
	closed bool
}

// flow is one forwarded connection; cancel closes both of its sides.
type flow struct{ cancel context.CancelFunc }

func newLive(id string) *live {
	l := &live{id: id, up: rate.NewLimiter(0, 0), down: rate.NewLimiter(0, 0), flows: map[*flow]struct{}{}}
	l.left.Store(noBudget)
	return l
}

// noBudget is live.left when no budget is watched.
const noBudget = math.MaxInt64

// spend counts n relayed bytes against the budget left; the flow that
// spends the last of it kicks the server's enforcement.
func (l *live) spend(n int) {
	if l.left.Load() == noBudget {
		return
	}
	if l.left.Add(-int64(n)) <= 0 && l.kick != nil {
		l.kick()
	}
}

// watchBudget sets what the peer may still relay: the budget less what the
// device has counted, or noBudget when there is none or it is already
// spent (the state then says cut or throttled).
func (p *peer) watchBudget(epoch string) {
	left := int64(noBudget)
	if p.cred.Budget != plane.NoBudget && p.state == serving {
		if u := p.used(epoch); u < p.cred.Budget {
			left = int64(min(p.cred.Budget-u, uint64(noBudget-1)))
		}
	}
	p.live.left.Store(left)
}

// setSpeed holds both directions to bps bytes per second; 0 is unlimited.
func (l *live) setSpeed(bps uint64) { l.setSpeedAt(time.Now(), bps) }

// setSpeedAt is setSpeed at a given time. The buckets never hold rate.Inf:
// a bucket advanced under Inf multiplies the time since its last change by
// infinity, and a zero interval gives NaN tokens, after which it never
// refuses. Unlimited is the limited flag off instead, which every user of
// the buckets reads first.
func (l *live) setSpeedAt(now time.Time, bps uint64) {
	if bps == 0 {
		l.limited.Store(false)
		return
	}
	lim, burst := rate.Limit(bps), max(int(min(bps, 1<<30)), 64<<10)
	for _, r := range []*rate.Limiter{l.up, l.down} {
		if r.Limit() != lim || r.Burst() != burst {
			r.SetBurstAt(now, burst)
			r.SetLimitAt(now, lim)
		}
	}
	l.limited.Store(true)
}

// open registers a flow, refusing it over MaxConns or once closed.
func (l *live) open(f *flow) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errPeerGone
	}
	if m := l.maxConns.Load(); m > 0 && int64(len(l.flows)) >= m {
		return errTooManyConns
	}
	l.flows[f] = struct{}{}
	return nil
}

func (l *live) done(f *flow) {
	l.mu.Lock()
	delete(l.flows, f)
	l.mu.Unlock()
}

func (l *live) conns() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.flows)
}

// closeFlows ends every open flow; with final, new ones are refused too.
func (l *live) closeFlows(final bool) {
	l.mu.Lock()
	fs := make([]*flow, 0, len(l.flows))
	for f := range l.flows {
		fs = append(fs, f)
	}
	if final {
		l.closed = true
	}
	l.mu.Unlock()
	for _, f := range fs {
		f.cancel()
	}
}
