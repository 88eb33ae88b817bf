package outline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app/plane"
	"github.com/usipipo/usipipo/store/model"
)

func TestTCPRelayEachCipherManyKeys(t *testing.T) {
	s := newTestServer(t, Options{})
	echo, _ := echoServer(t)
	var creds []plane.Credential
	for i, m := range Methods() {
		creds = append(creds, cred(t, fmt.Sprint("k", i), m, fmt.Sprint("pw", i), model.Limits{}))
	}
	if err := s.Apply(context.Background(), creds); err != nil {
		t.Fatal(err)
	}
	for i, m := range Methods() {
		c, _ := NewCipher(m, fmt.Sprint("pw", i))
		for range 2 { // first contact, then returning
			msg := bytes.Repeat([]byte{byte(i)}, 40000)
			cc := dialClient(t, s.addr, c, echo, msg[:100])
			cc.Write(msg[100:])
			echoOnce(t, cc, msg)
			cc.Close()
		}
	}
	snap, _ := s.Counters(context.Background())
	if len(snap.Counters) != 3 || snap.Epoch == "" {
		t.Fatalf("snapshot %+v", snap)
	}
	for _, c := range snap.Counters {
		if c.Rx != 80000 || c.Tx != 80000 || c.Sources != 1 || c.LastSeen.IsZero() {
			t.Fatalf("counter %+v", c)
		}
	}
	if s.metric(`usipipo_outline_handshake_failures_total{reason="auth"}`) != 0 {
		t.Fatal("a good key failed")
	}
}

// expectDrained checks that conn stays open, swallowing what is sent, until
// about the handshake timeout, and then ends with a FIN, not a reset.
func expectDrainedConn(t *testing.T, conn net.Conn, timeout time.Duration) {
	t.Helper()
	start := time.Now()
	conn.Write(bytes.Repeat([]byte{0x42}, 1000)) // more garbage: still no reset
	conn.SetReadDeadline(time.Now().Add(timeout + 3*time.Second))
	n, err := conn.Read(make([]byte, 10))
	el := time.Since(start)
	if n != 0 || err != io.EOF {
		t.Fatalf("drained conn read %d, %v (want EOF; a reset is ECONNRESET)", n, err)
	}
	if errors.Is(err, syscall.ECONNRESET) || el < timeout-500*time.Millisecond {
		t.Fatalf("closed after %v, before the %v timeout", el, timeout)
	}
}

func TestWrongKeyIsDrainedNotReset(t *testing.T) {
	s := newTestServer(t, Options{HandshakeTimeout: 1500 * time.Millisecond})
	echo, _ := echoServer(t)
	s.Apply(context.Background(), []plane.Credential{cred(t, "k", DefaultMethod, "right", model.Limits{})})
	wrong, _ := NewCipher(DefaultMethod, "wrong")
	cc := dialClient(t, s.addr, wrong, echo, []byte("hello"))
	expectDrainedConn(t, cc.Conn, 1500*time.Millisecond)
	if s.metric(`usipipo_outline_handshake_failures_total{reason="auth"}`) != 1 {
		t.Fatal("auth failure not counted")
	}
	// A short probe that never completes a header is treated the same.
	short, _ := net.Dial("tcp", s.addr)
	defer short.Close()
	short.Write([]byte("GET / HTTP/1.1\r\n"))
	expectDrainedConn(t, short, 1500*time.Millisecond)
}

func TestReplayIsRefused(t *testing.T) {
	s := newTestServer(t, Options{HandshakeTimeout: time.Second})
	echo, _ := echoServer(t)
	s.Apply(context.Background(), []plane.Credential{cred(t, "k", DefaultMethod, "pw", model.Limits{})})
	c, _ := NewCipher(DefaultMethod, "pw")
	// Capture what a client sends first.
	var captured bytes.Buffer
	w, _ := NewStreamWriter(&captured, c, bytes.Repeat([]byte{7}, 32))
	w.Write(append(AppendAddr(nil, Addr{IP: mustAP(echo)}), "first"...))
	send := func() net.Conn {
		conn, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		conn.Write(captured.Bytes())
		return conn
	}
	first := send()
	first.SetReadDeadline(time.Now().Add(5 * time.Second))
	r, err := NewStreamReader(first, c)
	if err != nil {
		t.Fatal(err)
	}
	if got := make([]byte, 5); func() bool { _, err := io.ReadFull(r, got); return err != nil || string(got) != "first" }() {
		t.Fatal("the original was not relayed")
	}
	expectDrainedConn(t, send(), time.Second)
	if s.metric(`usipipo_outline_handshake_failures_total{reason="replay"}`) != 1 {
		t.Fatal("replay not counted")
	}
}

func TestFailuresAreRateLimitedBeforeSearch(t *testing.T) {
	s := newTestServer(t, Options{HandshakeTimeout: 300 * time.Millisecond, FailBurst: 2, FailsPerSecond: 0.001})
	echo, _ := echoServer(t)
	s.Apply(context.Background(), []plane.Credential{cred(t, "k", DefaultMethod, "pw", model.Limits{})})
	wrong, _ := NewCipher(DefaultMethod, "nope")
	for range 2 {
		cc := dialClient(t, s.addr, wrong, echo, []byte("x"))
		io.Copy(io.Discard, cc.Conn)
	}
	trials := s.metric("usipipo_outline_key_trials_total")
	good, _ := NewCipher(DefaultMethod, "pw")
	cc := dialClient(t, s.addr, good, echo, []byte("x")) // even a good key: the source is over budget
	io.Copy(io.Discard, cc.Conn)
	if s.metric(`usipipo_outline_handshake_failures_total{reason="rate_limited"}`) != 1 ||
		s.metric("usipipo_outline_key_trials_total") != trials {
		t.Fatal("a rate-limited source still cost a key search")
	}
}

func TestRemovedKeyIsClosedAndOthersUndisturbed(t *testing.T) {
	s := newTestServer(t, Options{})
	echo, _ := echoServer(t)
	a, b := cred(t, "a", DefaultMethod, "pa", model.Limits{}), cred(t, "b", "aes-128-gcm", "pb", model.Limits{})
	s.Apply(context.Background(), []plane.Credential{a, b})
	ca, _ := NewCipher(DefaultMethod, "pa")
	cb, _ := NewCipher("aes-128-gcm", "pb")
	conA := dialClient(t, s.addr, ca, echo, []byte("a"))
	conB := dialClient(t, s.addr, cb, echo, []byte("b"))
	echoOnce(t, conA, []byte("a"))
	echoOnce(t, conB, []byte("b"))
	b.Budget = 1 << 40 // a new budget for b: its connection must survive
	start := time.Now()
	s.Apply(context.Background(), []plane.Credential{b})
	conA.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := conA.Read(make([]byte, 1)); err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("removed key's connection still open: %v", err)
	}
	conB.Write([]byte("still"))
	echoOnce(t, conB, []byte("still"))
	conA2 := dialClient(t, s.addr, ca, echo, []byte("again"))
	conA2.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := conA2.Read(make([]byte, 1)); err == nil {
		t.Fatal("removed key still works")
	}
}

func TestLimits(t *testing.T) {
	s := newTestServer(t, Options{HandshakeTimeout: time.Second})
	echo, _ := echoServer(t)
	c, _ := NewCipher(DefaultMethod, "pw")
	ctx := context.Background()

	t.Run("max conns", func(t *testing.T) {
		s.Apply(ctx, []plane.Credential{cred(t, "m", DefaultMethod, "pw", model.Limits{MaxConns: 1})})
		one := dialClient(t, s.addr, c, echo, []byte("1"))
		echoOnce(t, one, []byte("1"))
		two := dialClient(t, s.addr, c, echo, []byte("2"))
		two.SetReadDeadline(time.Now().Add(3 * time.Second))
		if _, err := two.Read(make([]byte, 1)); err == nil {
			t.Fatal("second connection served")
		}
	})
	t.Run("budget", func(t *testing.T) {
		k := cred(t, "b", DefaultMethod, "pw", model.Limits{})
		k.Budget = 10000
		s.Apply(ctx, []plane.Credential{k})
		cc := dialClient(t, s.addr, c, echo, make([]byte, 1000))
		echoOnce(t, cc, make([]byte, 1000))
		cc.Write(make([]byte, 20000))
		cc.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, _ := io.Copy(io.Discard, cc)
		if n > 20000 {
			t.Fatalf("%d bytes past the budget", n)
		}
	})
	t.Run("expiry", func(t *testing.T) {
		s.Apply(ctx, []plane.Credential{cred(t, "e", DefaultMethod, "pw", model.Limits{ExpiresAt: time.Now().Add(700 * time.Millisecond)})})
		cc := dialClient(t, s.addr, c, echo, []byte("x"))
		echoOnce(t, cc, []byte("x"))
		cc.SetReadDeadline(time.Now().Add(3 * time.Second))
		if _, err := cc.Read(make([]byte, 1)); err == nil {
			t.Fatal("connection outlived its key")
		}
	})
	t.Run("speed", func(t *testing.T) {
		s.Apply(ctx, []plane.Credential{cred(t, "s", DefaultMethod, "pw", model.Limits{SpeedBps: 200_000})})
		start := time.Now()
		cc := dialClient(t, s.addr, c, echo, nil)
		go cc.Write(make([]byte, 400_000))
		echoOnce(t, cc, make([]byte, 400_000))
		// 400 kB at 200 kB/s with a 64 kB burst takes at least 1.5 s.
		if el := time.Since(start); el < 1500*time.Millisecond {
			t.Fatalf("400 kB in %v at 200 kB/s", el)
		}
	})
}

func TestPasswordChangeClosesOldConnections(t *testing.T) {
	s := newTestServer(t, Options{HandshakeTimeout: time.Second})
	echo, _ := echoServer(t)
	k := cred(t, "k", DefaultMethod, "old", model.Limits{})
	s.Apply(context.Background(), []plane.Credential{k})
	old, _ := NewCipher(DefaultMethod, "old")
	cc := dialClient(t, s.addr, old, echo, []byte("x"))
	echoOnce(t, cc, []byte("x"))
	k = cred(t, "k", DefaultMethod, "new", model.Limits{})
	k.Version = 2
	s.Apply(context.Background(), []plane.Credential{k})
	cc.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := cc.Read(make([]byte, 1)); err == nil {
		t.Fatal("a connection under the old password survived")
	}
	nw, _ := NewCipher(DefaultMethod, "new")
	cc = dialClient(t, s.addr, nw, echo, []byte("y"))
	echoOnce(t, cc, []byte("y"))
	snap, _ := s.Counters(context.Background())
	if len(snap.Counters) != 1 || snap.Counters[0].Rx != 2 {
		t.Fatalf("counters across the rotation: %+v", snap.Counters)
	}
}

func TestCloseEndsEverythingAndIsIdempotent(t *testing.T) {
	s := newTestServer(t, Options{HandshakeTimeout: time.Minute})
	echo, _ := echoServer(t)
	s.Apply(context.Background(), []plane.Credential{cred(t, "k", DefaultMethod, "pw", model.Limits{})})
	c, _ := NewCipher(DefaultMethod, "pw")
	live := dialClient(t, s.addr, c, echo, []byte("x"))
	echoOnce(t, live, []byte("x"))
	probe, _ := net.Dial("tcp", s.addr) // drained for a minute unless Close ends it
	defer probe.Close()
	probe.Write([]byte("junk"))
	udp, _ := net.Dial("udp", s.udpAddr())
	defer udp.Close()
	if _, err := udpRoundTrip(t, udp, c, udpEcho(t), "u", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s.Close()
	s.Close()
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("Close took %v", el)
	}
	live.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := live.Read(make([]byte, 1)); err == nil {
		t.Fatal("a relayed connection survived Close")
	}
}
