package outline

import (
	"context"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app/plane"
	"github.com/usipipo/usipipo/store/model"
)

// udpRoundTrip sends one datagram through the server to target and returns
// the reply's payload, or an error after timeout.
func udpRoundTrip(t *testing.T, conn net.Conn, c *Cipher, target string, msg string, timeout time.Duration) (string, error) {
	t.Helper()
	return udpRoundTripTo(t, conn, c, Addr{IP: mustAP(target)}, mustAP(target), msg, timeout)
}

func udpRoundTripTo(t *testing.T, conn net.Conn, c *Cipher, to Addr, target netip.AddrPort, msg string, timeout time.Duration) (string, error) {
	t.Helper()
	pkt, err := SealPacket(c, nil, append(AppendAddr(nil, to), msg...))
	if err != nil {
		t.Fatal(err)
	}
	conn.Write(pkt)
	buf := make([]byte, 65535)
	conn.SetReadDeadline(time.Now().Add(timeout))
	n, err := conn.Read(buf)
	if err != nil {
		return "", err
	}
	p, err := OpenPacket(c, buf[:n])
	if err != nil {
		return "", err
	}
	a, k, err := ParseAddr(p)
	if err != nil || a.IP != target {
		t.Fatalf("reply source %v %v", a, err)
	}
	return string(p[k:]), nil
}

func TestUDPRelayAndSessions(t *testing.T) {
	s := newTestServer(t, Options{UDPTimeout: 500 * time.Millisecond})
	echo := udpEcho(t)
	s.Apply(context.Background(), []plane.Credential{
		cred(t, "a", DefaultMethod, "pa", model.Limits{}), cred(t, "b", "aes-128-gcm", "pb", model.Limits{})})
	ca, _ := NewCipher(DefaultMethod, "pa")
	cb, _ := NewCipher("aes-128-gcm", "pb")
	connA, _ := net.Dial("udp", s.udpAddr())
	connB, _ := net.Dial("udp", s.udpAddr())
	defer connA.Close()
	defer connB.Close()
	for i := range 3 {
		if got, err := udpRoundTrip(t, connA, ca, echo, "ping-a", 2*time.Second); err != nil || got != "ping-a" {
			t.Fatalf("a %d: %q %v", i, got, err)
		}
	}
	if got, err := udpRoundTrip(t, connB, cb, echo, "ping-b", 2*time.Second); err != nil || got != "ping-b" {
		t.Fatalf("b: %q %v", got, err)
	}
	byName := Addr{Host: "localhost", Port: mustAP(echo).Port()}
	if got, err := udpRoundTripTo(t, connB, cb, byName, mustAP(echo), "by-name", 3*time.Second); err != nil || got != "by-name" {
		t.Fatalf("b by name: %q %v", got, err)
	}
	wrong, _ := NewCipher(DefaultMethod, "wrong")
	other, _ := net.Dial("udp", s.udpAddr())
	defer other.Close()
	if _, err := udpRoundTrip(t, other, wrong, echo, "x", 300*time.Millisecond); err == nil {
		t.Fatal("wrong key answered")
	}
	snap, _ := s.Counters(context.Background())
	if c := snap.Counters[0]; c.ID != "a" || c.Rx != 18 || c.Tx != 18 || c.Conns != 1 {
		t.Fatalf("counter %+v", c)
	}
	// Idle sessions end.
	time.Sleep(1200 * time.Millisecond)
	if snap, _ := s.Counters(context.Background()); snap.Counters[0].Conns != 0 {
		t.Fatalf("idle session kept: %+v", snap.Counters[0])
	}
	// Removal: the key stops at once.
	s.Apply(context.Background(), []plane.Credential{cred(t, "b", "aes-128-gcm", "pb", model.Limits{})})
	if _, err := udpRoundTrip(t, connA, ca, echo, "gone", 300*time.Millisecond); err == nil {
		t.Fatal("removed key answered")
	}
}

// TestUDPReplayedDatagramDropped replays a captured datagram on its own
// session, from a new address (a first contact), and reflects the server's
// reply back at it: each is dropped and counted, and the session still
// carries fresh datagrams.
func TestUDPReplayedDatagramDropped(t *testing.T) {
	s := newTestServer(t, Options{})
	echo := udpEcho(t)
	s.Apply(context.Background(), []plane.Credential{cred(t, "a", DefaultMethod, "pa", model.Limits{})})
	c, _ := NewCipher(DefaultMethod, "pa")
	conn, _ := net.Dial("udp", s.udpAddr())
	defer conn.Close()
	pkt, err := SealPacket(c, nil, append(AppendAddr(nil, Addr{IP: mustAP(echo)}), "once"...))
	if err != nil {
		t.Fatal(err)
	}
	reply := make([]byte, 65535)
	exchange := func(conn net.Conn, p []byte, wait time.Duration) (int, error) {
		conn.Write(p)
		conn.SetReadDeadline(time.Now().Add(wait))
		return conn.Read(reply)
	}
	n, err := exchange(conn, pkt, 2*time.Second)
	if err != nil {
		t.Fatalf("first datagram: %v", err)
	}
	echoed := append([]byte(nil), reply[:n]...)
	if _, err := exchange(conn, pkt, 300*time.Millisecond); err == nil {
		t.Fatal("a replayed datagram was relayed on its session")
	}
	other, _ := net.Dial("udp", s.udpAddr())
	defer other.Close()
	if _, err := exchange(other, pkt, 300*time.Millisecond); err == nil {
		t.Fatal("a replayed datagram opened a session from a new address")
	}
	if _, err := exchange(conn, echoed, 300*time.Millisecond); err == nil {
		t.Fatal("the server's own reply, reflected, was relayed")
	}
	if got := s.metric("usipipo_outline_udp_replays_total"); got != 3 {
		t.Fatalf("replays counted %d, want 3", got)
	}
	if got := s.metric("usipipo_outline_udp_dropped_total"); got != 3 {
		t.Fatalf("dropped counted %d, want 3", got)
	}
	if got, err := udpRoundTrip(t, conn, c, echo, "fresh", 2*time.Second); err != nil || got != "fresh" {
		t.Fatalf("fresh datagram after replays: %q %v", got, err)
	}
}

// TestUDPReplayWindowForgets checks the datagram filter is time-windowed:
// within its window a replay is dropped; once two windows have turned over,
// the salt is forgotten and the same datagram passes again (the bound that
// keeps the filter's memory fixed).
func TestUDPReplayWindowForgets(t *testing.T) {
	var skew atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	s := newTestServer(t, Options{Now: now, UDPReplayWindow: time.Minute})
	if s.udpSalts == s.salts {
		t.Fatal("UDP shares TCP's filter")
	}
	echo := udpEcho(t)
	s.Apply(context.Background(), []plane.Credential{cred(t, "a", DefaultMethod, "pa", model.Limits{})})
	c, _ := NewCipher(DefaultMethod, "pa")
	conn, _ := net.Dial("udp", s.udpAddr())
	defer conn.Close()
	captured, err := SealPacket(c, nil, append(AppendAddr(nil, Addr{IP: mustAP(echo)}), "old"...))
	if err != nil {
		t.Fatal(err)
	}
	send := func(p []byte, wait time.Duration) error {
		conn.Write(p)
		conn.SetReadDeadline(time.Now().Add(wait))
		_, err := conn.Read(make([]byte, 2048))
		return err
	}
	if err := send(captured, 2*time.Second); err != nil {
		t.Fatalf("first: %v", err)
	}
	if send(captured, 300*time.Millisecond) == nil {
		t.Fatal("replay within the window passed")
	}
	for range 2 { // each fresh datagram after a window turns a generation over
		skew.Add(int64(61 * time.Second))
		if got, err := udpRoundTrip(t, conn, c, echo, "fresh", 2*time.Second); err != nil || got != "fresh" {
			t.Fatalf("fresh: %q %v", got, err)
		}
	}
	if err := send(captured, 2*time.Second); err != nil {
		t.Fatalf("a salt two windows old is still remembered: %v", err)
	}
	if got := s.metric("usipipo_outline_udp_replays_total"); got != 1 {
		t.Fatalf("replays %d, want 1", got)
	}
}
