package notify

import (
	"context"
	"strings"
	"testing"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// suspendedCheckpoints lists the credentials whose suspension is remembered.
func (e *env) suspendedCheckpoints() map[string]bool {
	e.t.Helper()
	out := map[string]bool{}
	err := e.st.ScanTelemetry(store.Checkpoints, ckSuspended, func(k, _ []byte) bool {
		out[string(k[len(ckSuspended):])] = true
		return true
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// A suspended key or MTProto secret that is then revoked loses its
// suspended checkpoint on the next scan (and a restart does not bring it
// back); one still suspended keeps it, and is still told when restored.
func TestRevokedCredentialForgetsSuspendedCheckpoint(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u := e.user(6001, "en")
	revoked, kept := e.key(u.ID, model.Limits{}), e.key(u.ID, model.Limits{})
	px, err := e.svc.CreateProxy(ctx, app.ActorCLI, app.ProxyRequest{UserID: u.ID, Admin: true})
	if err != nil {
		t.Fatal(err)
	}
	sc := newScanner(e.notifier())
	scanOnce(t, sc)
	if err := e.svc.SetKeyStatus(ctx, app.ActorCLI, revoked.ID, model.KeySuspended, "abuse"); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.SetKeyStatus(ctx, app.ActorCLI, kept.ID, model.KeySuspended, "abuse"); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.SetProxyStatus(ctx, app.ActorCLI, px.ID, model.KeySuspended, "abuse"); err != nil {
		t.Fatal(err)
	}
	scanOnce(t, sc)
	if got := e.suspendedCheckpoints(); len(got) != 3 {
		t.Fatalf("suspended checkpoints %v, want the three credentials", got)
	}

	if err := e.svc.SetKeyStatus(ctx, app.ActorCLI, revoked.ID, model.KeyRevoked, "user asked"); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.SetProxyStatus(ctx, app.ActorCLI, px.ID, model.KeyRevoked, "user asked"); err != nil {
		t.Fatal(err)
	}
	scanOnce(t, sc)
	if got := e.suspendedCheckpoints(); len(got) != 1 || !got[kept.ID] {
		t.Fatalf("suspended checkpoints after the revocations %v, want only %s", got, kept.ID)
	}
	if sc.suspended[revoked.ID] || sc.suspended[px.ID] {
		t.Fatalf("the scanner still remembers revoked credentials: %v", sc.suspended)
	}
	sc = newScanner(e.notifier()) // a restart reads the checkpoints again
	scanOnce(t, sc)
	if len(sc.suspended) != 1 || !sc.suspended[kept.ID] {
		t.Fatalf("after a restart the scanner remembers %v", sc.suspended)
	}

	if err := e.svc.SetKeyStatus(ctx, app.ActorCLI, kept.ID, model.KeyActive, ""); err != nil {
		t.Fatal(err)
	}
	scanOnce(t, sc)
	if got := e.suspendedCheckpoints(); len(got) != 0 {
		t.Fatalf("suspended checkpoints after the restoration %v", got)
	}
	got := e.bot.to(6001)
	if len(got) != 4 || !strings.Contains(got[3], "active again") {
		t.Fatalf("messages %q, want three suspensions and one restoration", got)
	}
}
