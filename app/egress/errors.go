package egress

import (
	"errors"
	"net/netip"
)

// Sentinel errors of this package.
var (
	// ErrDenied is matched (errors.Is) by every *DeniedError: the egress policy
	// refused the destination.
	ErrDenied = errors.New("egress: destination refused by policy")
	// ErrRateLimited is returned when a credential opens new flows faster than
	// Options.FlowsPerSecond allows beyond Options.FlowBurst.
	ErrRateLimited = errors.New("egress: new-flow rate limit exceeded")
)

// Reasons carried by DeniedError.Reason and by the reason label of
// usipipo_egress_refused_total.
const (
	ReasonInvalid   = "invalid"   // unparseable address, or port 0
	ReasonDeny      = "deny"      // matched Options.Deny
	ReasonMail      = "mail"      // port 25, 465 or 587
	ReasonOwn       = "own"       // one of the node's own addresses
	ReasonLoopback  = "loopback"  // 127/8, ::1
	ReasonPrivate   = "private"   // 10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7
	ReasonLinkLocal = "linklocal" // 169.254/16, fe80::/10
	ReasonMulticast = "multicast" // 224/4, ff00::/8
	ReasonReserved  = "reserved"  // unspecified, documentation, benchmarking, 240/4, …
	ReasonRateLimit = "ratelimit" // metrics only: ErrRateLimited
)

// DeniedError says that the policy refused a destination, and why.
type DeniedError struct {
	Addr   netip.AddrPort // the destination as judged (the resolved address for names)
	Reason string         // one of the Reason constants
}

func (e *DeniedError) Error() string {
	if !e.Addr.IsValid() {
		return "egress: refused unparseable destination (" + e.Reason + ")"
	}
	return "egress: refused " + e.Addr.String() + " (" + e.Reason + ")"
}

// Is reports whether target is ErrDenied.
func (e *DeniedError) Is(target error) bool { return target == ErrDenied }
