// Package wire holds the MTProto proxy's protocol codecs, without sockets:
// the obfuscated2 init (key derivation with the secret, transport tag and
// DC index, and the secretless init sent towards a DC), FakeTLS
// ClientHello reading and HMAC verification, the ServerHello answer, and
// the application-data record framing. Every parser of network bytes here
// has a fuzz target.
package wire
