package cli

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/store"
)

// `usipipo admin reset-totp` turns a locked-out admin's second factor off
// on the running node: the password alone logs in again, and the audit
// trail says the CLI did it.
func TestAdminResetTOTPVerb(t *testing.T) {
	n := runNode(t, "")
	env := map[string]string{"USIPIPO_DATA": n.data}
	ctx, svc := context.Background(), n.Service
	otp, err := svc.ResetAdminPassword(ctx, app.ActorCLI, app.DefaultAdmin)
	if err != nil {
		t.Fatal(err)
	}
	const pw = "reset-totp-test-password"
	if err := svc.ChangeAdminPassword(ctx, app.ActorCLI, app.DefaultAdmin, otp, pw); err != nil {
		t.Fatal(err)
	}
	e, err := svc.BeginTOTP(ctx, app.DefaultAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.ConfirmTOTP(ctx, app.PanelActor(app.DefaultAdmin), app.DefaultAdmin, e.Seed, app.TOTPCode(e.Seed, time.Now().Unix()/30)); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.LoginAdmin(ctx, app.PanelActor(app.DefaultAdmin), app.DefaultAdmin, pw, ""); !errors.Is(err, app.ErrSecondFactor) {
		t.Fatalf("login without a code while enrolled: %v", err)
	}

	if code, _, errs := runCLI(t, env, "admin", "reset-totp", "--user", "nobody"); code != 1 || !strings.Contains(errs, "not found") {
		t.Fatalf("unknown login: %d %q", code, errs)
	}
	if code, _, errs := runCLI(t, env, "admin", "reset-totp", "extra"); code != 2 {
		t.Fatalf("stray argument: %d %q", code, errs)
	}
	code, out, errs := runCLI(t, env, "admin", "reset-totp")
	if code != 0 || !strings.Contains(out, "removed") {
		t.Fatalf("reset-totp: %d %q %q", code, out, errs)
	}
	if enrolled, left, err := svc.TOTPStatus(ctx, app.DefaultAdmin); err != nil || enrolled || left != 0 {
		t.Fatalf("after reset: enrolled %v, %d recovery codes, %v", enrolled, left, err)
	}
	if _, err := svc.LoginAdmin(ctx, app.PanelActor(app.DefaultAdmin), app.DefaultAdmin, pw, ""); err != nil {
		t.Fatalf("password login after the reset: %v", err)
	}
	entries, _, err := svc.Audit(ctx, store.AuditFilter{}, store.Page{Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	var audited int
	for _, a := range entries {
		if a.Action == "admin.totp/1" && a.Actor == string(app.ActorCLI) && strings.Contains(string(a.Command), `"enrolled":false`) {
			audited++
		}
	}
	if audited != 1 {
		t.Fatalf("%d audited CLI resets, want 1", audited)
	}
	// Again: nothing to remove, nothing written.
	code, out, _ = runCLI(t, env, "admin", "reset-totp", "--user", app.DefaultAdmin, "--json")
	var res struct {
		Username    string `json:"username"`
		WasEnrolled bool   `json:"was_enrolled"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res.Username != app.DefaultAdmin || res.WasEnrolled {
		t.Fatalf("second reset --json: %d %q", code, out)
	}
}
