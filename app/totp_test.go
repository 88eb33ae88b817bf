package app

import (
	"bytes"
	"errors"
	"image/png"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

func enrolAdmin(t *testing.T, n *testNode) (pw string, seed []byte, codes []string) {
	t.Helper()
	pw, err := n.svc.ResetAdminPassword(ctx(), ActorCLI, "root")
	if err != nil {
		t.Fatal(err)
	}
	e, err := n.svc.BeginTOTP(ctx(), "root")
	if err != nil {
		t.Fatal(err)
	}
	codes, err = n.svc.ConfirmTOTP(ctx(), ActorCLI, "root", e.Seed, TOTPCode(e.Seed, n.clock.Now().Unix()/30))
	if err != nil {
		t.Fatal(err)
	}
	return pw, e.Seed, codes
}

func TestTOTPEnrolmentActivatesOnlyAfterAValidCode(t *testing.T) {
	n := newTestNode(t)
	pw, err := n.svc.ResetAdminPassword(ctx(), ActorCLI, "root")
	if err != nil {
		t.Fatal(err)
	}
	e, err := n.svc.BeginTOTP(ctx(), "root")
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(e.URI)
	if err != nil || u.Scheme != "otpauth" || u.Host != "totp" || u.Query().Get("secret") != e.Secret ||
		!strings.HasSuffix(u.Path, ":root") {
		t.Fatalf("enrolment URI %q: %v", e.URI, err)
	}
	if _, err := png.Decode(bytes.NewReader(e.QR)); err != nil {
		t.Fatalf("QR is not a PNG: %v", err)
	}
	// Begun but not confirmed: the login still needs no code.
	if _, err := n.svc.CheckAdminLogin(ctx(), "root", pw, ""); err != nil {
		t.Fatalf("an unconfirmed enrolment changed the login: %v", err)
	}
	if enrolled, _, _ := n.svc.TOTPStatus(ctx(), "root"); enrolled {
		t.Fatal("enrolled before confirmation")
	}
	wrong := TOTPCode(e.Seed, n.clock.Now().Unix()/30+5)
	if _, err := n.svc.ConfirmTOTP(ctx(), ActorCLI, "root", e.Seed, wrong); !errors.Is(err, ErrWrongCode) {
		t.Fatalf("a code from 150 s ahead: %v", err)
	}
	codes, err := n.svc.ConfirmTOTP(ctx(), ActorCLI, "root", e.Seed, TOTPCode(e.Seed, n.clock.Now().Unix()/30))
	if err != nil {
		t.Fatal(err)
	}
	if len(codes) != RecoveryCodeCount {
		t.Fatalf("%d recovery codes", len(codes))
	}
	if enrolled, left, _ := n.svc.TOTPStatus(ctx(), "root"); !enrolled || left != RecoveryCodeCount {
		t.Fatalf("status %v %d", enrolled, left)
	}
	if _, err := n.svc.CheckAdminLogin(ctx(), "root", pw, ""); !errors.Is(err, ErrSecondFactor) {
		t.Fatalf("login without a code after enrolment: %v", err)
	}
	n.clock.Add(30 * time.Second)
	if _, err := n.svc.LoginAdmin(ctx(), ActorCLI, "root", pw, TOTPCode(e.Seed, n.clock.Now().Unix()/30)); err != nil {
		t.Fatalf("login with a current code: %v", err)
	}
	// Secrets stay out of the store in clear and out of the audit trail.
	adm, err := n.st.Admin("root")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(adm.TOTP, e.Seed) || bytes.Contains(adm.TOTP, []byte(e.Secret)) {
		t.Fatal("seed stored in clear")
	}
	for _, c := range codes {
		if strings.Contains(strings.Join(adm.Recovery, ","), normalRecoveryCode(c)) {
			t.Fatal("recovery code stored in clear")
		}
	}
	entries, _, err := n.svc.Audit(ctx(), store.AuditFilter{}, store.Page{Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range entries {
		if en.Action == "admin.totp/1" && (bytes.Contains(en.Command, []byte("recovery\":[")) || bytes.Contains(en.Command, []byte("totp\":\""))) {
			t.Fatalf("audit entry carries secrets: %s", en.Command)
		}
	}
}

func TestRecoveryCodesAreSingleUse(t *testing.T) {
	n := newTestNode(t)
	pw, _, codes := enrolAdmin(t, n)
	if _, err := n.svc.LoginAdmin(ctx(), ActorCLI, "root", pw, strings.ToUpper(codes[3])); err != nil {
		t.Fatalf("login with a recovery code (typed in upper case): %v", err)
	}
	if _, err := n.svc.LoginAdmin(ctx(), ActorCLI, "root", pw, codes[3]); !errors.Is(err, ErrSecondFactor) {
		t.Fatalf("a spent recovery code worked again: %v", err)
	}
	if _, err := n.svc.LoginAdmin(ctx(), ActorCLI, "root", "wrong password!", codes[4]); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("a recovery code with a wrong password: %v", err)
	}
	if _, left, _ := n.svc.TOTPStatus(ctx(), "root"); left != RecoveryCodeCount-1 {
		t.Fatalf("%d codes left, want %d (a wrong password must not spend one)", left, RecoveryCodeCount-1)
	}
	if _, err := n.svc.LoginAdmin(ctx(), ActorCLI, "root", pw, "abcd-efgh-ijkl-mnop"); !errors.Is(err, ErrSecondFactor) {
		t.Fatalf("an unknown recovery code: %v", err)
	}
	if err := n.svc.RemoveTOTP(ctx(), ActorCLI, "root"); err != nil {
		t.Fatal(err)
	}
	if _, err := n.svc.LoginAdmin(ctx(), ActorCLI, "root", pw, ""); err != nil {
		t.Fatalf("login after the second factor was removed: %v", err)
	}
}

func TestRecordFailedLoginIsAudited(t *testing.T) {
	n := newTestNode(t)
	long := strings.Repeat("x", 300)
	if err := n.svc.RecordFailedLogin(ctx(), LoginViaPanel, long, "192.0.2.7", true); err != nil {
		t.Fatal(err)
	}
	if err := n.svc.RecordFailedLogin(ctx(), "telnet", "root", "", false); !errors.Is(err, model.ErrInvalid) {
		t.Fatalf("unknown channel: %v", err)
	}
	entries, _, err := n.svc.Audit(ctx(), store.AuditFilter{}, store.Page{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, e := range entries {
		if e.Action == "auth.login_failed/1" && e.Error == "" && e.Actor == "panel" {
			found = true
			if !bytes.Contains(e.Command, []byte(`"ip":"192.0.2.7"`)) || bytes.Contains(e.Command, []byte(long[:65])) {
				t.Fatalf("entry %s", e.Command)
			}
		}
	}
	if !found {
		t.Fatalf("no failed-login entry in %+v", entries)
	}
}
