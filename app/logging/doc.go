// Package logging writes the node's logs as JSON lines, one per record, in
// the seed's schema:
//
//	{"timestamp":"2025-10-22T12:00:00.000Z","level":"INFO","service":"vpn-service",
//	 "user_id":"uuid","action":"create_config","details":{"vpn_type":"wireguard"},
//	 "duration_ms":150,"ip":"192.168.1.1"}
//
// New returns a *slog.Logger whose message is the action (short snake_case,
// e.g. "create_config"). The attributes named by [UserID], [IP], [DurationMS]
// and [Service] become top-level fields wherever they are given at the top of
// a record or through Logger.With — also under Logger.WithGroup, which nests
// only details — and every other attribute goes into details, groups as
// nested objects. timestamp (RFC 3339, milliseconds, UTC), level, service
// and action are always present; the others only when given. user_id, ip
// and service are always JSON strings; duration_ms a number of milliseconds
// ([Duration] makes one from a time.Duration).
//
// Attributes whose key names a secret (password, token, cookie, ... see
// [Sensitive]) are written as "[redacted]" at any depth, after any
// slog.LogValuer is resolved.
//
// The handler is safe for concurrent use and writes each record with one
// Write call, so lines never interleave. [Sampler] thins access logs under
// load.
package logging
