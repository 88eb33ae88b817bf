package mtproto

import (
	"context"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app/plane"
)

func open(t *testing.T, s *Server, mode string, key []byte) *gotdConn {
	t.Helper()
	g, err := dialGotd(t, s.Addr().String(), mode, key, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.echo([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	return g
}

func TestRevoke(t *testing.T) {
	s, _, _, key := fixture(t, Options{})
	other := randKey(t)
	ctx := context.Background()
	s.Apply(ctx, []plane.Credential{cred("u", key), cred("v", other)})
	gu, gv := open(t, s, "ee", key), open(t, s, "dd", other)
	// A changed limit on u must not disturb v, nor u's open connection.
	c := cred("u", key)
	c.Version, c.Limits.MaxConns = 2, 5
	s.Apply(ctx, []plane.Credential{c, cred("v", other)})
	if gu.echo([]byte("still")) != nil || gv.echo([]byte("still")) != nil {
		t.Fatal("an update disturbed open connections")
	}
	start := time.Now()
	s.Apply(ctx, []plane.Credential{cred("v", other)})
	closedWithin(t, gu, 2*time.Second)
	if gv.echo([]byte("v lives")) != nil {
		t.Fatal("revoking u closed v")
	}
	t.Logf("revoked connection closed after %v", time.Since(start))
	if _, err := dialGotd(t, s.Addr().String(), "ee", key, 2); err == nil {
		t.Fatal("revoked secret accepted")
	}
}

func TestExpiry(t *testing.T) {
	s, _, _, key := fixture(t, Options{})
	c := cred("u", key)
	c.Limits.ExpiresAt = time.Now().Add(time.Second)
	s.Apply(context.Background(), []plane.Credential{c})
	g := open(t, s, "dd", key)
	closedWithin(t, g, 3*time.Second) // 1 s to expiry + at most 2 s
	if g, err := dialGotd(t, s.Addr().String(), "dd", key, 2); err == nil && g.echo([]byte("x")) == nil {
		t.Fatal("expired secret still relays")
	}
}

func TestMaxConns(t *testing.T) {
	s, _, _, key := fixture(t, Options{})
	c := cred("u", key)
	c.Limits.MaxConns = 2
	s.Apply(context.Background(), []plane.Credential{c})
	open(t, s, "ee", key)
	open(t, s, "dd", key)
	g, err := dialGotd(t, s.Addr().String(), "dd", key, 2)
	if err == nil && g.echo([]byte("third")) == nil {
		t.Fatal("third connection relayed with MaxConns 2")
	}
	snap, _ := s.Counters(context.Background())
	if len(snap.Counters) != 1 || snap.Counters[0].Conns != 2 {
		t.Fatalf("counters %+v", snap.Counters)
	}
}

func TestBudget(t *testing.T) {
	s, _, _, key := fixture(t, Options{})
	c := cred("u", key)
	c.Budget, c.Mark, c.MarkEpoch = 10<<10, 1<<30, "another epoch" // a foreign mark counts as 0
	s.Apply(context.Background(), []plane.Credential{c})
	g := open(t, s, "dd", key)
	if err := g.echo(make([]byte, 20<<10)); err == nil {
		t.Fatal("relayed past the budget")
	}
	closedWithin(t, g, 2*time.Second)
	snap, _ := s.Counters(context.Background())
	if cnt := snap.Counters[0]; cnt.Rx+cnt.Tx < 10<<10 || cnt.Sources != 1 || snap.Epoch != s.epoch {
		t.Fatalf("counter %+v", cnt)
	}
}

func TestThrottle(t *testing.T) {
	s, _, _, key := fixture(t, Options{})
	c := cred("u", key)
	c.Budget, c.Limits.ThrottleBps = 1024, 64<<10
	s.Apply(context.Background(), []plane.Credential{c})
	g := open(t, s, "dd", key)
	start := time.Now()
	// 160 KiB at 64 KiB/s each way, after a 64 KiB burst per direction: 1.5 s.
	if err := g.echo(make([]byte, 160<<10)); err != nil {
		t.Fatalf("throttled relay cut: %v", err)
	}
	if d := time.Since(start); d < time.Second {
		t.Fatalf("160 KiB relayed in %v despite a 64 KiB/s throttle", d)
	}
}

func TestConnBound(t *testing.T) {
	s, _, _, key := fixture(t, Options{MaxConns: 1})
	open(t, s, "dd", key)
	if g, err := dialGotd(t, s.Addr().String(), "dd", key, 2); err == nil && g.echo([]byte("x")) == nil {
		t.Fatal("second connection served with MaxConns 1")
	}
	if s.m.full.Get() == 0 {
		t.Fatal("bound not counted")
	}
}
