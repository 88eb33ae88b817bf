package app

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A TOTP code lets one login in: a replay is refused while the code is
// still valid, even from concurrent logins, and a later code works.
func TestLoginAdminRefusesReplayedTOTPCode(t *testing.T) {
	n := newTestNode(t)
	pw, err := n.svc.ResetAdminPassword(ctx(), ActorCLI, "root")
	if err != nil {
		t.Fatal(err)
	}
	e, err := n.svc.BeginTOTP(ctx(), "root")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.svc.ConfirmTOTP(ctx(), ActorCLI, "root", e.Seed, TOTPCode(e.Seed, n.clock.Now().Unix()/30)); err != nil {
		t.Fatal(err)
	}
	n.clock.Add(60 * time.Second)
	code := TOTPCode(e.Seed, n.clock.Now().Unix()/30)
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			_, err := n.svc.LoginAdmin(ctx(), ActorCLI, "root", pw, code)
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, ErrSecondFactor):
				t.Errorf("replay: %v, want ErrSecondFactor", err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d concurrent logins with one code succeeded, want 1", wins.Load())
	}
	n.clock.Add(30 * time.Second) // still within ValidTOTP's drift window
	if !ValidTOTP(e.Seed, code, n.clock.Now()) {
		t.Fatal("test assumption: the code should still be valid")
	}
	if _, err := n.svc.LoginAdmin(ctx(), ActorCLI, "root", pw, code); !errors.Is(err, ErrSecondFactor) {
		t.Fatalf("replay a step later: %v", err)
	}
	if _, err := n.svc.LoginAdmin(ctx(), ActorCLI, "root", pw, TOTPCode(e.Seed, n.clock.Now().Unix()/30)); err != nil {
		t.Fatalf("a fresh code: %v", err)
	}
	// A wrong password with a fresh code does not spend it.
	next := TOTPCode(e.Seed, n.clock.Now().Unix()/30+1)
	if _, err := n.svc.LoginAdmin(ctx(), ActorCLI, "root", "wrong password!", next); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := n.svc.LoginAdmin(ctx(), ActorCLI, "root", pw, next); err != nil {
		t.Fatalf("the code a wrong password tried: %v", err)
	}
}
