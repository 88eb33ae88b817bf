package egress

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
)

// fakeDNS is a tiny DNS server on 127.0.0.1 over UDP that answers A and AAAA
// questions from a table, and NXDOMAIN for names it does not know. The answer
// for a name may change between queries (answer), to play a rebinding server.
type fakeDNS struct {
	pc net.PacketConn

	mu     sync.Mutex
	answer func(name string, n int) ([]netip.Addr, bool) // guarded by mu
	asked  map[string]int                                // queries per name; guarded by mu
}

// startDNS serves records and returns a resolver that asks only this server.
func startDNS(t testing.TB, records map[string][]netip.Addr) (*net.Resolver, *fakeDNS) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeDNS{pc: pc, asked: make(map[string]int)}
	s.answer = func(name string, _ int) ([]netip.Addr, bool) {
		a, ok := records[name]
		return a, ok
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.serve()
	}()
	t.Cleanup(func() {
		pc.Close()
		<-done
	})
	r := &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer // the resolver's own path, not subject to the policy
			return d.DialContext(ctx, "udp", pc.LocalAddr().String())
		},
	}
	return r, s
}

func (s *fakeDNS) setAnswer(f func(name string, n int) ([]netip.Addr, bool)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answer = f
}

func (s *fakeDNS) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := s.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		if resp := s.respond(buf[:n]); resp != nil {
			s.pc.WriteTo(resp, from)
		}
	}
}

const (
	typeA    = 1
	typeAAAA = 28
)

// respond builds the answer to query q by hand (RFC 1035 §4): the header, the
// question echoed, and one record per address of the asked type, its owner name
// a pointer to the question.
func (s *fakeDNS) respond(q []byte) []byte {
	if len(q) < 12 {
		return nil
	}
	i := 12
	var labels []string
	for {
		if i >= len(q) {
			return nil
		}
		l := int(q[i])
		i++
		if l == 0 {
			break
		}
		if l&0xc0 != 0 || i+l > len(q) {
			return nil
		}
		labels = append(labels, string(q[i:i+l]))
		i += l
	}
	if i+4 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[i:])
	i += 4
	name := strings.ToLower(strings.Join(labels, "."))

	s.mu.Lock()
	s.asked[name]++
	addrs, known := s.answer(name, s.asked[name])
	s.mu.Unlock()

	var rdata [][]byte
	for _, a := range addrs {
		switch {
		case qtype == typeA && a.Is4():
			b := a.As4()
			rdata = append(rdata, b[:])
		case qtype == typeAAAA && a.Is6():
			b := a.As16()
			rdata = append(rdata, b[:])
		}
	}
	flags := uint16(0x8180) // response, recursion desired and available, no error
	if !known {
		flags |= 3 // NXDOMAIN
	}
	resp := make([]byte, 0, 512)
	resp = append(resp, q[0], q[1])
	resp = binary.BigEndian.AppendUint16(resp, flags)
	resp = binary.BigEndian.AppendUint16(resp, 1)                  // questions
	resp = binary.BigEndian.AppendUint16(resp, uint16(len(rdata))) // answers
	resp = binary.BigEndian.AppendUint16(resp, 0)                  // authority
	resp = binary.BigEndian.AppendUint16(resp, 0)                  // additional
	resp = append(resp, q[12:i]...)
	for _, rd := range rdata {
		resp = append(resp, 0xc0, 12) // name: pointer to the question's
		resp = binary.BigEndian.AppendUint16(resp, qtype)
		resp = binary.BigEndian.AppendUint16(resp, 1) // class IN
		resp = binary.BigEndian.AppendUint32(resp, 1) // TTL
		resp = binary.BigEndian.AppendUint16(resp, uint16(len(rd)))
		resp = append(resp, rd...)
	}
	return resp
}

func TestFakeDNSResolves(t *testing.T) {
	r, _ := startDNS(t, map[string][]netip.Addr{
		"both.test": {netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("fd00::1")},
	})
	got, err := r.LookupNetIP(context.Background(), "ip", "both.test")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %v, want 10.0.0.1 and fd00::1", got)
	}
	if _, err := r.LookupNetIP(context.Background(), "ip", "unknown.test"); err == nil {
		t.Fatal("unknown name resolved")
	}
}
