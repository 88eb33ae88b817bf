package logging

// Field names of a log line, in the order they are written. UserID, IP,
// DurationMS and Service are also the attribute keys that set them.
const (
	Timestamp  = "timestamp"   // RFC 3339 with milliseconds, UTC
	Level      = "level"       // DEBUG, INFO, WARN or ERROR
	Service    = "service"     // the component: "vpn-service", "api", "bot", "store"...
	UserID     = "user_id"     // the user the record is about
	Action     = "action"      // the slog message: short snake_case, e.g. "create_config"
	Details    = "details"     // every other attribute, groups nested
	DurationMS = "duration_ms" // milliseconds, a number
	IP         = "ip"          // the client's address
)
