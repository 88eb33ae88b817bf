package app

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

func TestRegisterUserSealsPersonalData(t *testing.T) {
	n := newTestNode(t)
	u, err := n.svc.RegisterUser(ctx(), ActorCLI, NewUser{TelegramID: 42, Username: "maria_secret_name", FirstName: "María", Language: "en-US"})
	if err != nil {
		t.Fatal(err)
	}
	if u.Personal.Username != "maria_secret_name" || u.Language != "en" || u.Role != model.RoleUser {
		t.Fatalf("view %+v", u)
	}
	if _, err := n.svc.RegisterUser(ctx(), ActorCLI, NewUser{TelegramID: 42}); !errors.Is(err, model.ErrExists) {
		t.Fatalf("second registration: %v", err)
	}
	found, err := n.svc.FindUser(ctx(), "42")
	if err != nil || found.ID != u.ID {
		t.Fatalf("find by telegram id: %v", err)
	}
	var raw bytes.Buffer
	if _, err := n.st.Snapshot(&raw); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw.Bytes(), []byte("maria_secret_name")) || bytes.Contains(raw.Bytes(), []byte("María")) {
		t.Fatal("personal data in clear in the database file")
	}
	if err := n.svc.Erase(ctx(), ActorCLI, u.ID); err != nil {
		t.Fatal(err)
	}
	gone, err := n.svc.User(ctx(), u.ID)
	if err != nil || gone.Personal.Username != "" || !gone.Erased {
		t.Fatalf("after erase: %v %+v", err, gone)
	}
}

func TestReferralCreditsVestOnPayment(t *testing.T) {
	n := newTestNode(t)
	ref, _ := n.svc.RegisterUser(ctx(), ActorCLI, NewUser{TelegramID: 1})
	u, err := n.svc.RegisterUser(ctx(), ActorCLI, NewUser{TelegramID: 2, ReferralCode: strings.ToUpper(ref.ReferralCode)})
	if err != nil || u.ReferredBy != ref.ID {
		t.Fatalf("referred user: %v %+v", err, u)
	}
	sum, _ := n.svc.Referrals(ctx(), ref.ID)
	if sum.Invited != 1 || sum.Pending != DefaultPolicy().ReferralCredits || sum.Earned != 0 {
		t.Fatalf("before payment %+v", sum)
	}
}

func TestKeysQuotaTrialAndConfigs(t *testing.T) {
	n := newTestNode(t)
	u, _ := n.svc.RegisterUser(ctx(), ActorCLI, NewUser{TelegramID: 5})
	plan, err := n.svc.PutPlan(ctx(), ActorCLI, PlanSpec{Name: "Básico", DurationDays: 30, MaxKeys: 1, PriceStars: 100})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.svc.CreateKey(ctx(), ActorCLI, KeyRequest{UserID: u.ID, Type: model.WireGuard}); !errors.Is(err, model.ErrQuota) {
		t.Fatalf("key without a plan: %v", err)
	}
	trial, err := n.svc.CreateKey(ctx(), ActorCLI, KeyRequest{UserID: u.ID, Type: model.Outline, Trial: true})
	if err != nil || !trial.Trial || !trial.Limits.ExpiresAt.Equal(n.clock.Now().Add(72*time.Hour)) {
		t.Fatalf("trial: %v %+v", err, trial)
	}
	if _, err := n.svc.CreateKey(ctx(), ActorCLI, KeyRequest{UserID: u.ID, Type: model.Outline, Trial: true}); !errors.Is(err, model.ErrTrialUsed) {
		t.Fatalf("second trial: %v", err)
	}
	if _, err := n.svc.GrantPlan(ctx(), ActorCLI, u.ID, plan.ID, 1, 0); err != nil {
		t.Fatal(err)
	}
	wg, err := n.svc.CreateKey(ctx(), ActorCLI, KeyRequest{UserID: u.ID, Type: model.WireGuard, Name: "laptop"})
	if err != nil {
		t.Fatal(err)
	}
	if wg.AddrV4 == "" || wg.AddrV6 == "" || wg.Public == "" || wg.Secret != nil {
		t.Fatalf("wireguard key %+v", wg)
	}
	conf, err := n.svc.KeyConfig(ctx(), wg.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"[Interface]", "PrivateKey = ", "Address = " + wg.AddrV4 + "/32, " + wg.AddrV6 + "/128",
		"PublicKey = c2VydmVy", "PresharedKey = ", "Endpoint = vpn.example.net:51820", "AllowedIPs = 0.0.0.0/0, ::/0", "PersistentKeepalive = 25"} {
		if !strings.Contains(conf.Text, want) {
			t.Errorf("config lacks %q:\n%s", want, conf.Text)
		}
	}
	ss, err := n.svc.KeyConfig(ctx(), trial.ID)
	if err != nil || !strings.HasPrefix(ss.Text, "ss://") || !strings.Contains(ss.Text, "@vpn.example.net:8388/#outline") {
		t.Fatalf("outline key: %v %q", err, ss.Text)
	}
	png, err := n.svc.QR(ctx(), conf, wg.Version)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("qr: %v", err)
	}
	// Rotation: same addresses, a new key, a new config (never the cached one).
	rot, err := n.svc.RotateKey(ctx(), ActorCLI, wg.ID)
	if err != nil || rot.AddrV4 != wg.AddrV4 || rot.Public == wg.Public {
		t.Fatalf("rotate: %v %+v", err, rot)
	}
	conf2, _ := n.svc.KeyConfig(ctx(), wg.ID)
	if conf2.Text == conf.Text {
		t.Fatal("rotated key served its old config")
	}
	if _, err := n.svc.CreateKey(ctx(), ActorCLI, KeyRequest{UserID: u.ID, Type: model.WireGuard}); !errors.Is(err, model.ErrQuota) {
		t.Fatalf("over quota: %v", err)
	}
	if err := n.svc.SetKeyStatus(ctx(), ActorCLI, wg.ID, model.KeyRevoked, "user asked"); err != nil {
		t.Fatal(err)
	}
	if _, err := n.svc.KeyConfig(ctx(), wg.ID); !errors.Is(err, model.ErrState) {
		t.Fatalf("config of a revoked key: %v", err)
	}
	// An operator's grant is outside the quota.
	if _, err := n.svc.CreateKey(ctx(), ActorCLI, KeyRequest{UserID: u.ID, Type: model.WireGuard, Admin: true}); err != nil {
		t.Fatal(err)
	}
}

func TestAPIKeys(t *testing.T) {
	n := newTestNode(t)
	k, err := n.svc.CreateAPIKey(ctx(), ActorCLI, "crm", []model.Scope{model.ScopeRead}, n.clock.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	got, err := n.svc.AuthenticateAPIKey(ctx(), k.Token)
	if err != nil || got.ID != k.Key.ID {
		t.Fatalf("auth: %v", err)
	}
	for _, bad := range []string{"", "usp_x_y", flipLast(k.Token), strings.ToUpper(k.Token)} {
		if _, err := n.svc.AuthenticateAPIKey(ctx(), bad); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("token %q accepted: %v", bad, err)
		}
	}
	n.clock.Add(2 * time.Hour)
	if _, err := n.svc.AuthenticateAPIKey(ctx(), k.Token); !errors.Is(err, ErrUnauthorized) {
		t.Fatal("expired key accepted")
	}
	k2, _ := n.svc.CreateAPIKey(ctx(), ActorCLI, "x", []model.Scope{model.ScopeAdmin}, time.Time{})
	if err := n.svc.RevokeAPIKey(ctx(), ActorCLI, k2.Key.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := n.svc.AuthenticateAPIKey(ctx(), k2.Token); !errors.Is(err, ErrUnauthorized) {
		t.Fatal("revoked key accepted")
	}
	var raw bytes.Buffer
	n.st.Snapshot(&raw)
	_, secret, _ := strings.Cut(strings.TrimPrefix(k2.Token, "usp_"), "_")
	if bytes.Contains(raw.Bytes(), []byte(secret)) {
		t.Fatal("api key secret stored in clear")
	}
	entries, _, _ := n.st.Audit(store.AuditFilter{}, store.Page{Limit: 100})
	for _, e := range entries {
		if bytes.Contains(e.Command, []byte(secret)) {
			t.Fatal("api key secret in the audit trail")
		}
	}
}

func TestAdminPassword(t *testing.T) {
	n := newTestNode(t)
	pw, err := n.svc.ResetAdminPassword(ctx(), ActorCLI, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.svc.CheckAdminPassword(ctx(), DefaultAdmin, pw); err != nil {
		t.Fatal(err)
	}
	if _, err := n.svc.CheckAdminPassword(ctx(), DefaultAdmin, pw+"x"); !errors.Is(err, ErrUnauthorized) {
		t.Fatal("wrong password accepted")
	}
	if _, err := n.svc.CheckAdminPassword(ctx(), "nobody", pw); !errors.Is(err, ErrUnauthorized) {
		t.Fatal("unknown admin accepted")
	}
	entries, _, _ := n.st.Audit(store.AuditFilter{}, store.Page{})
	for _, e := range entries {
		if bytes.Contains(e.Command, []byte("argon2id")) {
			t.Fatal("password hash in the audit trail")
		}
	}
}

// flipLast changes a token's last character to a different one.
func flipLast(tok string) string {
	last := byte('a')
	if tok[len(tok)-1] == last {
		last = 'b'
	}
	return tok[:len(tok)-1] + string(last)
}
