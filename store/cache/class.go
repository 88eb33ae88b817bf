package cache

import "time"

// Class is a TTL class: how long a derived value may live before it is
// recomputed even if its record never changes. Versioned keys already keep
// values correct; the TTL only bounds memory held by values nobody asks for.
type Class int

// The seed's TTL classes. An unknown Class gets the shortest TTL (Users).
const (
	// Users is for per-user views and secrets: 15 minutes.
	Users Class = iota
	// Configs is for rendered VPN client configs and QR codes: 1 hour.
	Configs
	// Static is for data that changes rarely (plans, settings views): 24 hours.
	Static
)

// String names the class for logs and test output.
func (c Class) String() string {
	switch c {
	case Users:
		return "users"
	case Configs:
		return "configs"
	case Static:
		return "static"
	default:
		return "unknown"
	}
}

// ttl is the lifetime of an entry of class c. Unknown classes fall back to the
// shortest lifetime so a mistake costs recomputation, not memory.
func (c Class) ttl() time.Duration {
	switch c {
	case Configs:
		return time.Hour
	case Static:
		return 24 * time.Hour
	default:
		return 15 * time.Minute
	}
}
