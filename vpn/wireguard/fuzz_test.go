package wireguard

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"golang.org/x/net/dns/dnsmessage"
	"golang.zx2c4.com/wireguard/conn/bindtest"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/tuntest"
)

// wgInitiation is a handshake initiation to the server key serverPub, made
// by wireguard-go itself for a client with key clientPriv, with its mac1.
func wgInitiation(tb testing.TB, clientPriv *ecdh.PrivateKey, serverPub []byte) []byte {
	tb.Helper()
	binds := bindtest.NewChannelBinds()
	dev := device.NewDevice(tuntest.NewChannelTUN().TUN(), binds[0], device.NewLogger(device.LogLevelSilent, ""))
	defer dev.Close()
	if err := dev.IpcSet("private_key=" + hex.EncodeToString(clientPriv.Bytes()) + "\n"); err != nil {
		tb.Fatal(err)
	}
	var pk device.NoisePublicKey
	copy(pk[:], serverPub)
	peer, err := dev.NewPeer(pk)
	if err != nil {
		tb.Fatal(err)
	}
	msg, err := dev.CreateMessageInitiation(peer)
	if err != nil {
		tb.Fatal(err)
	}
	var b bytes.Buffer
	if err := binary.Write(&b, binary.LittleEndian, msg); err != nil {
		tb.Fatal(err)
	}
	var gen device.CookieGenerator
	gen.Init(pk)
	gen.AddMacs(b.Bytes())
	return b.Bytes()
}

// FuzzInitiator: the knock path's reading of an initiation from the
// network agrees with wireguard-go on mac1, recovers exactly the key of
// the client that made a real initiation, and recovers no key from
// anything else: a sealed static key cannot be forged without a client's
// private key, so any key it returns is one of the clients'.
func FuzzInitiator(f *testing.F) {
	x := ecdh.X25519()
	server, _ := x.NewPrivateKey(bytes.Repeat([]byte{1}, 32))
	in, err := newInitiations(server.Bytes())
	if err != nil {
		f.Fatal(err)
	}
	var checker device.CookieChecker
	var spk device.NoisePublicKey
	copy(spk[:], in.pub[:])
	checker.Init(spk)
	clients := map[[32]byte]bool{}
	for i := range 3 {
		c, _ := x.NewPrivateKey(bytes.Repeat([]byte{byte(i + 2)}, 32))
		msg := wgInitiation(f, c, in.pub[:])
		key, ok := in.initiator(msg)
		if !isInitiation(msg) || !ok || !bytes.Equal(key[:], c.PublicKey().Bytes()) {
			f.Fatalf("wireguard-go's initiation from client %d not read: %v", i, ok)
		}
		clients[key] = true
		f.Add(msg, false)
		f.Add(msg, true)
	}
	other, _ := x.NewPrivateKey(bytes.Repeat([]byte{9}, 32))
	otherPub, _ := x.NewPrivateKey(bytes.Repeat([]byte{8}, 32))
	f.Add(wgInitiation(f, other, otherPub.PublicKey().Bytes()), true) // for another server
	f.Add(make([]byte, initSize), true)                               // a low-order ephemeral key
	f.Add([]byte{1, 0, 0, 0}, false)
	var gen device.CookieGenerator
	gen.Init(spk)
	// remac makes the fuzzer's mutations get past mac1, to the key
	// recovery, as an attacker who knows the server's public key can.
	f.Fuzz(func(t *testing.T, msg []byte, remac bool) {
		if !isInitiation(msg) {
			return // the bind shows knock initiations only
		}
		if remac {
			gen.AddMacs(msg)
		}
		keep := bytes.Clone(msg)
		mac1 := in.validMAC1(msg)
		if mac1 != checker.CheckMAC1(msg) {
			t.Fatalf("mac1 %v, wireguard-go says otherwise", mac1)
		}
		key, ok := in.initiator(msg)
		if ok && (!mac1 || !clients[key]) {
			t.Fatalf("key %x recovered (mac1 %v)", key, mac1)
		}
		if !bytes.Equal(keep, msg) {
			t.Fatal("the message changed")
		}
	})
}

// streamConn is a DNS-over-TCP client that sends in and then closes; what
// the server writes collects in out.
type streamConn struct {
	net.Conn // nil: only what serveDNSStream calls is implemented
	in       *bytes.Reader
	out      bytes.Buffer
}

func (c *streamConn) Read(b []byte) (int, error)       { return c.in.Read(b) }
func (c *streamConn) Write(b []byte) (int, error)      { return c.out.Write(b) }
func (c *streamConn) SetReadDeadline(time.Time) error  { return nil }
func (c *streamConn) SetWriteDeadline(time.Time) error { return nil }
func (c *streamConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *streamConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *streamConn) Close() error                     { return nil }
func (c *streamConn) SetDeadline(t time.Time) error    { return nil }

// frames splits a DNS-over-TCP stream into its whole length-prefixed
// messages.
func frames(b []byte) [][]byte {
	var out [][]byte
	for len(b) >= 2 {
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			break
		}
		out = append(out, b[2:2+n])
		b = b[2+n:]
	}
	return out
}

// FuzzDNSStream: a peer's DNS-over-TCP stream (RFC 7766) is answered in
// order, one well-framed response per query and never more responses than
// whole queries, each to its query's ID, until the first message that is no
// query; whatever the peer sends, the server stops without a panic.
func FuzzDNSStream(f *testing.F) {
	s := &Server{m: newServerMetrics(metrics.NewSet()), ctx: context.Background(), o: Options{Resolver: staticResolver(f)}}
	frame := func(msgs ...[]byte) []byte {
		var b []byte
		for _, m := range msgs {
			b = binary.BigEndian.AppendUint16(b, uint16(len(m)))
			b = append(b, m...)
		}
		return b
	}
	a, aaaa := query(f, "a.example.", dnsmessage.TypeA), query(f, "x.missing.", dnsmessage.TypeAAAA)
	mx := query(f, "a.example.", dnsmessage.TypeMX)
	whole := frame(a, aaaa, mx)
	f.Add(whole)
	f.Add(frame(a)[:5])                     // cut inside the query
	f.Add(append(frame(mx), 0xff, 0xff, 1)) // a length past the end
	f.Add(frame(mx, []byte{1, 2, 3}, a))    // garbage between queries ends the stream
	f.Add(frame(nil, a))                    // an empty message
	f.Fuzz(func(t *testing.T, in []byte) {
		c := &streamConn{in: bytes.NewReader(in)}
		s.serveDNSStream(c)
		queries, answers := frames(in), frames(c.out.Bytes())
		if rest := c.out.Len(); len(answers) > len(queries) || rest != len(frame(answers...)) ||
			bytes.Equal(in, whole) && len(answers) != 3 {
			t.Fatalf("%d answers (%d bytes) to %d queries", len(answers), rest, len(queries))
		}
		for i, ans := range answers {
			var p dnsmessage.Parser
			h, err := p.Start(ans)
			if err != nil || !h.Response || len(ans) > maxDNSResponse || h.ID != binary.BigEndian.Uint16(queries[i]) {
				t.Fatalf("answer %d %x to %x: %v", i, ans, queries[i], err)
			}
		}
	})
}

// FuzzFirewallCounters: the refusal counters read back from the firewall
// tools' output (`nft -j list counters`, `iptables-save -c`) are what they
// wrote, and other lines or documents give no count.
func FuzzFirewallCounters(f *testing.F) {
	f.Add("refused_egress", uint64(12), "[12:720] -A USIPIPO-EGRESS -j DROP")
	f.Add("x", uint64(1<<63), "[0:0] -A USIPIPO-CONNSDROP -j DROP")
	f.Add("", uint64(0), "[5:3] -A USIPIPO-EGRESS -j ACCEPT")
	f.Add("\"", uint64(7), "[:] -A USIPIPO-EGRESS -j DROP")
	f.Fuzz(func(t *testing.T, name string, packets uint64, line string) {
		name = strings.ToValidUTF8(name, "?") // nft's names are ASCII; JSON is UTF-8
		doc, _ := json.Marshal(map[string]any{"nftables": []any{
			map[string]any{"metainfo": map[string]any{"version": "1.0.6"}},
			map[string]any{"counter": map[string]any{"family": "inet", "name": name, "table": fwTable, "packets": packets, "bytes": 1}},
			map[string]any{"counter": map[string]any{"family": "inet", "name": name + "x", "table": "other", "packets": 1}},
		}})
		got, err := parseNftCounters(doc)
		if err != nil || len(got) != 1 || got[name] != packets {
			t.Fatalf("%s read as %v, %v", doc, got, err)
		}
		parseNftCounters([]byte(line)) // any output at all: no panic

		for _, chain := range []string{iptEgress, iptPeer, iptConnsDrop} {
			n, ok := iptDropCount(line, chain)
			if ok && (!strings.HasSuffix(line, " -A "+chain+" -j DROP") || !strings.HasPrefix(line, "[") ||
				!strings.Contains(line, strconv.FormatUint(n, 10)) && n != 0) {
				t.Fatalf("%q read as %d for %s", line, n, chain)
			}
			if n, ok := iptDropCount(fmt.Sprintf("[%d:99] -A %s -j DROP", packets, chain), chain); !ok || n != packets {
				t.Fatalf("%d read as %d, %v", packets, n, ok)
			}
		}
	})
}
