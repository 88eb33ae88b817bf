package outline

import (
	"context"
	"net"
	"net/netip"
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
