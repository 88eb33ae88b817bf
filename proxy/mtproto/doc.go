// Package mtproto is the node's MTProto proxy for Telegram: per-user
// secrets on one port, each user's traffic counted and limited, and every
// connection that is not a valid handshake spliced to the cloak domain's
// real TLS site, so the port looks like an ordinary HTTPS server.
//
// # Architecture
//
// Server implements plane.Plane. Apply swaps a table of secrets (a slice for
// the search, a map by credential ID) behind an atomic pointer; handshakes
// read it without locks. Each secret carries its limits, its counters
// (atomic), its live connections and the client addresses it saw.
//
// A connection's first byte decides its path (handshake.go):
//
//   - 0x16, TLS: the ClientHello is read whole, reassembled if the client
//     split it over several records (wire.ReadClientHello). Its SNI must be
//     the cloak domain. Its random is HMAC-SHA256(secret, hello with the
//     random zeroed) with the Unix time folded into the last 4 bytes; the
//     secret is found by checking the client address's last match first,
//     then, unless the address failed too many handshakes this minute,
//     every secret. The time must be within Skew and the digest new to the
//     anti-replay cache (kept for 2×Skew, which covers every replay the
//     skew check lets through). We answer with a ServerHello, a change
//     cipher spec and a fake certificate record whose random is the HMAC
//     clients check, then read the obfuscated2 init from the
//     application-data records.
//   - anything else: 64 bytes are read as an obfuscated2 init; the secret is
//     the one whose derived key decrypts a valid transport tag (one AES
//     block per secret, wire.TagMatches). Only the dd tag (padded
//     intermediate) is accepted unless AllowPlain.
//
// A failure of any kind (not TLS, foreign SNI, wrong secret, clock skew,
// replay, plain tag) sends the connection, with the bytes already read, to
// FrontAddr (front.go); failures also count against the source.
//
// The relay (relay.go) dials the DC named in the init through the egress
// dialer, sends it a fresh secretless init with the same tag and DC index,
// and copies both ways, decrypting with the client's stream and
// re-encrypting with the DC's in place, in one pooled 16 KiB buffer taken
// only once the socket is readable (waitReadable polls without a buffer),
// so idle connections hold none. Towards a FakeTLS client each read goes
// out as one application-data record (5 bytes of headroom in the buffer).
// EOF half-closes the other side; errors, idle timeouts, revocation,
// expiry and the budget close both. With FastMode the DC's init is built
// from the client's downstream key so DC→client bytes need no crypto at
// all (fastmode.go says when that is valid and what it gives up).
//
// Enforcement: admit checks MaxConns; every relayed read adds to the
// secret's counters and checks expiry and budget (throttling to
// ThrottleBps instead of cutting when set); a 500 ms ticker closes the
// connections of expired or exhausted secrets; Apply closes those of
// removed ones at once. The number of concurrent client connections is
// bounded (MaxConns option); past it connections are dropped with a
// rate-limited log line.
//
// The wire sub-package holds the protocol codecs (obfuscated2, FakeTLS
// hellos and records), free of sockets, and their fuzz targets.
package mtproto
