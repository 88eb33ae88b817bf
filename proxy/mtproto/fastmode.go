package mtproto

import (
	"crypto/cipher"

	"github.com/usipipo/usipipo/proxy/mtproto/wire"
)

// Fast mode (Options.FastMode): DC→client bytes pass without crypto.
//
// A relay normally runs AES-256-CTR twice on every byte from the DC: it
// decrypts with the DC leg's keystream and encrypts with the client leg's.
// Both are plain CTR keystreams XORed onto the same MTProto transport bytes
// P, so the DC sends P⊕K_dc and the client wants P⊕K_client. If K_dc and
// K_client are the same keystream, at the same offset, the DC's bytes are
// already what the client wants. The proxy chooses the DC leg's keys (they
// are the bytes of the init it sends), so it can make them equal:
// wire.NewDCInitPassthrough puts the client's downstream key and IV into the
// DC init, where the DC reads the key and IV it encrypts with.
//
// This is valid exactly when all of these hold, as they do for this relay:
//
//   - The proxy talks obfuscated2 to the DC itself, over one TCP connection
//     per client connection. (Not through Telegram's middle proxies, used
//     for the promoted-channel ad tag: there the DC leg carries RPC_PROXY
//     frames under their own AES-CBC session keys, and every byte must be
//     re-framed.)
//   - Both legs carry the same transport: we forward the client's transport
//     tag to the DC unchanged and never rewrite, split or join MTProto
//     packets. A proxy that converted transports (e.g. abridged on one leg,
//     intermediate on the other) could not pass bytes through.
//   - Both keystreams start at offset 0 when relaying starts: obfuscated2
//     spends only the sender's (upstream) keystream on the 64-byte init,
//     and we send the client nothing obfuscated before the relay. (FakeTLS's
//     ServerHello and certificate records are outside the obfuscated
//     stream.)
//   - Nothing reads or alters the DC's bytes on the way. Counting, limits,
//     expiry and budgets still apply: they need lengths, not plaintext.
//
// FakeTLS (ee) clients are covered too: their obfuscated2 stream is the
// payload of TLS application-data records, so the proxy still wraps each
// read in a record header (5 bytes, in the buffer's headroom) but does no
// crypto. The framing is per write, not per byte: it does not stop the
// pass-through, it is the only work left.
//
// Only DC→client can pass through. Both directions' keys come from the
// same 48 init bytes (upstream: bytes 8..56; downstream: 24..56 and 8..24,
// reversed), overlapping in bytes 24..40, and the client's upstream key is
// a hash with the secret that the DC cannot share. DC→client is the bulk
// direction anyway (downloads, media).
//
// What it gives up, which is why it is off by default: the client's
// downstream key travels in clear in the init on the proxy→DC leg, and the
// same ciphertext bytes cross both legs. An observer who sees the DC leg
// can strip the client leg's downstream obfuscation, and one who sees both
// legs (near the proxy) can match a client to its DC connection by content,
// not only by timing. MTProto's own encryption of messages is unaffected:
// obfuscation only hides the protocol from DPI on the client's side. Turn
// it on when the proxy's upstream path is not the one watched (the usual
// case: the censor sits on the client's side).
func (s *Server) dcInit(init wire.Init, raw *[wire.InitLen]byte, sec *secret) (out [wire.InitLen]byte, enc cipher.Stream, down leg, err error) {
	if s.opts.FastMode {
		out, enc, err = wire.NewDCInitPassthrough(s.opts.Rand, raw, sec.key, init.Tag, init.DC)
		return out, enc, leg{}, err // dec and enc nil: pass through
	}
	out, enc, dec, err := wire.NewDCInit(s.opts.Rand, init.Tag, init.DC)
	return out, enc, leg{dec: dec, enc: init.Enc}, err
}
