// Package outline is the node's Shadowsocks data plane: the server that the
// official Outline apps (and any SIP002/SIP004 client) connect to with the
// ss:// access keys the node hands out. The protocol is implemented here on
// golang.org/x/crypto and checked against shadowsocks-libev in the tests.
//
// # Protocol (SIP004 AEAD)
//
// cipher.go derives an access key's master key from its password with
// OpenSSL's EVP_BytesToKey, and per-connection subkeys with HKDF-SHA1
// ("ss-subkey") from the client's random salt. stream.go is the TCP stream:
// the salt, then chunks of a sealed 2-byte length (at most 0x3FFF) and a
// sealed payload, the 12-byte little-endian nonce counting every seal.
// packet.go is UDP: salt plus one sealed payload per datagram. addr.go is
// the SOCKS5-style target address at the start of the first payload.
//
// # Many keys on one port
//
// A connection does not say which key it uses. The server reads the salt
// and the first sealed length and tries keys until one opens it (keyset.go),
// starting with the key that last matched the client's address (so a
// returning client costs one trial), and spreading a long search over the
// cores. kdf.go makes a trial cheap: the salt's HMAC state is computed once
// per connection, and nothing is allocated per key.
//
// # Probes and replays
//
// A connection that no key opens, that replays a recently seen salt
// (replay.go: two bounded generations of salts), or whose source has used
// up its failed-handshake budget (failures.go, checked before any key
// search) is not closed: it is read and discarded until the handshake
// timeout, then closed with a FIN, like any connection that times out, so
// an active prober learns nothing from when or how it hangs up. The
// server's own salts join the filter, so a reflected response cannot
// authenticate as a client stream.
//
// UDP carries a salt in every datagram. An authenticated datagram whose
// salt was seen recently is dropped and counted
// (usipipo_outline_udp_replays_total), by a filter of its own, bounded
// like TCP's but remembering minutes rather than hours (UDPReplayCapacity,
// UDPReplayWindow), so datagrams cannot push TCP's salts out. Only salts
// that authenticated are recorded, so junk cannot flush it; the server's
// reply salts are recorded too, so a reply reflected back is dropped. A
// replay does not count against its source's failure budget: a UDP source
// can be forged to lock a real client out.
//
// # Limits and accounting
//
// Server implements plane.Plane. Each installed credential has a keyState
// (keystate.go) that outlives its removal within an epoch, so counters never
// go back: bytes each way, open connections and UDP sessions, distinct
// client addresses. The state enforces the limits by itself: expiry by a
// timer, the budget on every counted chunk (cut, or throttle to
// ThrottleBps), MaxConns at registration, SpeedBps by a token bucket each
// way (TCP waits, UDP drops). Apply closes a removed or re-keyed
// credential's connections at once.
//
// # Egress
//
// Every target is reached under the node's egress policy: a TCP target
// given as a name by DialFor, which judges each resolved address at the
// socket; one given as an address by CheckFor and then a socket the server
// connects itself (sock_linux.go: fewer system calls per connection than
// net's dial, within the egress dialer's ConnectTimeout); UDP by CheckFor
// once per new destination of a NAT session (udp.go), after the server
// resolved a name itself. A UDP session has its own outbound socket and ends
// after UDPTimeout without client packets.
//
// # Connections
//
// On Linux the server accepts on the listener's descriptor and wraps each
// TCP socket in an *os.File for the runtime poller; accepted sockets take
// TCP_NODELAY and net's keepalive from the listener, where New sets them
// once. Target sockets set TCP_NODELAY but no keepalive (ss-server sets
// none on either side): the client side's keepalive finds a dead client
// and ends both sides; a dead target behind an idle client lasts until the
// client leaves. Handlers and relays run on pooled goroutines
// (workers.go) that keep their grown stacks between connections.
package outline
