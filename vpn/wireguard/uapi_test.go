package wireguard

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

const sampleGet = `private_key=e84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a
listen_port=51820
public_key=b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33
preshared_key=188515093e952f5f22e865cef3012e72f8b5f0b598ac0309d5dacce3b70fcf52
protocol_version=1
endpoint=[::ffff:127.0.0.1]:51000
last_handshake_time_sec=1700000000
last_handshake_time_nsec=5
tx_bytes=38333
rx_bytes=2224
persistent_keepalive_interval=0
allowed_ip=10.66.0.2/32
public_key=58402e695ba1772b1cc9309755f043251ea77fdcf10fbe63989ceb7e19321376
last_handshake_time_sec=0
last_handshake_time_nsec=0
tx_bytes=0
rx_bytes=0
`

func TestParseIpcGet(t *testing.T) {
	got, err := parseIpcGet(sampleGet)
	if err != nil || len(got) != 2 {
		t.Fatalf("%v %v", got, err)
	}
	p := got["b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33"]
	if p.rx != 2224 || p.tx != 38333 || !p.handshake.Equal(time.Unix(1700000000, 5)) ||
		p.endpoint != netip.MustParseAddrPort("[::ffff:127.0.0.1]:51000") {
		t.Fatalf("%+v", p)
	}
	if q := got["58402e695ba1772b1cc9309755f043251ea77fdcf10fbe63989ceb7e19321376"]; !q.handshake.IsZero() {
		t.Fatalf("no handshake yet: %+v", q)
	}
	for _, bad := range []string{"public_key=zz\n", "public_key=" + strings.Repeat("a", 64) + "\nrx_bytes=-1\n", "garbage\n",
		"public_key=" + strings.Repeat("a", 64) + "\nendpoint=nowhere\n"} {
		if _, err := parseIpcGet(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func FuzzParseIpcGet(f *testing.F) {
	f.Add(sampleGet)
	f.Add("public_key=" + strings.Repeat("0", 64) + "\nrx_bytes=18446744073709551615\n")
	f.Fuzz(func(t *testing.T, s string) {
		peers, err := parseIpcGet(s)
		if err != nil {
			return
		}
		for k := range peers {
			if len(k) != 64 || strings.Trim(k, "0123456789abcdef") != "" {
				t.Fatalf("key %q accepted", k)
			}
		}
	})
}

// staticResolver answers every name with 192.0.2.7 and 2001:db8::7, except
// names under .missing.
func staticResolver(t testing.TB) *net.Resolver {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, a, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var m dnsmessage.Message
			if m.Unpack(buf[:n]) != nil || len(m.Questions) != 1 {
				continue
			}
			q := m.Questions[0]
			m.Response = true
			h := dnsmessage.ResourceHeader{Name: q.Name, Type: q.Type, Class: q.Class, TTL: 5}
			switch {
			case strings.HasSuffix(q.Name.String(), ".missing."):
				m.RCode = dnsmessage.RCodeNameError
			case q.Type == dnsmessage.TypeA:
				m.Answers = []dnsmessage.Resource{{Header: h, Body: &dnsmessage.AResource{A: [4]byte{192, 0, 2, 7}}}}
			case q.Type == dnsmessage.TypeAAAA:
				m.Answers = []dnsmessage.Resource{{Header: h, Body: &dnsmessage.AAAAResource{AAAA: netip.MustParseAddr("2001:db8::7").As16()}}}
			}
			out, _ := m.Pack()
			pc.WriteTo(out, a)
		}
	}()
	addr := pc.LocalAddr().String()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", addr)
	}}
}

func query(t testing.TB, name string, typ dnsmessage.Type) []byte {
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: 42, RecursionDesired: true})
	b.StartQuestions()
	b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: typ, Class: dnsmessage.ClassINET})
	out, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAnswerDNS(t *testing.T) {
	r := staticResolver(t)
	for _, c := range []struct {
		name  string
		typ   dnsmessage.Type
		rcode dnsmessage.RCode
		n     int
	}{
		{"a.example.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, 1},
		{"a.example.", dnsmessage.TypeAAAA, dnsmessage.RCodeSuccess, 1},
		{"a.example.", dnsmessage.TypeMX, dnsmessage.RCodeSuccess, 0},
		{"x.missing.", dnsmessage.TypeA, dnsmessage.RCodeNameError, 0},
	} {
		out, ok := answerDNS(context.Background(), r, query(t, c.name, c.typ))
		var m dnsmessage.Message
		if !ok || m.Unpack(out) != nil || m.ID != 42 || !m.Response || m.RCode != c.rcode || len(m.Answers) != c.n ||
			len(m.Questions) != 1 || m.Questions[0].Name.String() != c.name {
			t.Errorf("%s %v: ok=%v %+v", c.name, c.typ, ok, m)
		}
	}
	if _, ok := answerDNS(context.Background(), r, []byte{1, 2, 3}); ok {
		t.Error("garbage answered")
	}
}

func FuzzAnswerDNS(f *testing.F) {
	r := staticResolver(f)
	f.Add(query(f, "a.example.", dnsmessage.TypeA))
	f.Add(query(f, "x.missing.", dnsmessage.TypeAAAA))
	f.Fuzz(func(t *testing.T, q []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		out, ok := answerDNS(ctx, r, q)
		if !ok {
			return
		}
		var p dnsmessage.Parser
		h, err := p.Start(out)
		if err != nil || !h.Response || len(out) > maxDNSResponse {
			t.Fatalf("bad response to %x: %v", q, err)
		}
	})
}
