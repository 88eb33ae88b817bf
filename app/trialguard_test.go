package app

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// A user who erases their account and writes again gets no fresh trials,
// and neither the erased user's audit trail nor the database keeps that
// Telegram id in clear or as a plain hash: only the keyed guard.
func TestErasedUserGetsNoFreshTrial(t *testing.T) {
	n := newTestNode(t)
	const tg = 5550123
	u, err := n.svc.RegisterUser(ctx(), ActorCLI, NewUser{TelegramID: tg})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.svc.CreateKey(ctx(), ActorCLI, KeyRequest{UserID: u.ID, Type: model.WireGuard, Trial: true}); err != nil {
		t.Fatal(err)
	}
	if err := n.svc.Erase(ctx(), ActorCLI, u.ID); err != nil {
		t.Fatal(err)
	}
	again, err := n.svc.RegisterUser(ctx(), ActorCLI, NewUser{TelegramID: tg})
	if err != nil {
		t.Fatal(err)
	}
	if again.ID == u.ID {
		t.Fatal("same user id after erasure")
	}
	_, err = n.svc.CreateKey(ctx(), ActorCLI, KeyRequest{UserID: again.ID, Type: model.WireGuard, Trial: true})
	if !errors.Is(err, model.ErrTrialUsed) {
		t.Fatalf("trial after erase and re-register: %v, want ErrTrialUsed", err)
	}
	// Protocols the erased account never tried stay available, and other
	// people are not affected.
	if _, err := n.svc.CreateProxy(ctx(), ActorCLI, ProxyRequest{UserID: again.ID, Trial: true}); err != nil {
		t.Fatalf("untried protocol: %v", err)
	}
	other, err := n.svc.RegisterUser(ctx(), ActorCLI, NewUser{TelegramID: tg + 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.svc.CreateKey(ctx(), ActorCLI, KeyRequest{UserID: other.ID, Type: model.WireGuard, Trial: true}); err != nil {
		t.Fatalf("another user's trial: %v", err)
	}

	guard := n.svc.trialGuard(tg)
	if len(guard) != 64 || guard == n.svc.trialGuard(tg+1) {
		t.Fatalf("guard %q", guard)
	}
	var raw bytes.Buffer
	if _, err := n.st.Snapshot(&raw); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw.Bytes(), []byte(guard)) {
		t.Fatal("the guard is not in the database: the check above passed for another reason")
	}
	erasedTG := strconv.Itoa(tg)
	if bytes.Contains(raw.Bytes(), []byte(plainHash(erasedTG))) {
		t.Fatal("the plain SHA-256 of the erased Telegram id is in the database")
	}
	es, _, err := n.svc.Audit(ctx(), store.AuditFilter{UserID: u.ID}, store.Page{Limit: 50})
	if err != nil || len(es) == 0 {
		t.Fatalf("audit of the erased user: %v", err)
	}
	for _, e := range es {
		if bytes.Contains(e.Command, []byte(erasedTG)) {
			t.Fatalf("the audit trail names the erased user's Telegram id: %s %s", e.Action, e.Command)
		}
	}
}

// The guard is keyed by the data key: another node's key gives another hash.
func TestTrialGuardIsKeyed(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	g1, g2 := a.svc.trialGuard(7), a.svc.trialGuard(7)
	if g1 == b.svc.trialGuard(7) || g1 != g2 {
		t.Fatal("trial guard is not a keyed, stable hash")
	}
	if a.svc.trialGuard(0) != "" {
		t.Fatal("no Telegram account, no guard")
	}
}

// The policy's daily trial budget refuses the trial past it with a clear
// error, audits the refusal, and resets the next UTC day.
func TestDailyTrialBudget(t *testing.T) {
	n := newTestNode(t)
	p := DefaultPolicy()
	p.TrialsPerDay = 2
	if err := n.svc.SetPolicy(ctx(), ActorCLI, p); err != nil {
		t.Fatal(err)
	}
	var us []*UserView
	for i := range 4 {
		u, err := n.svc.RegisterUser(ctx(), ActorCLI, NewUser{TelegramID: int64(900 + i)})
		if err != nil {
			t.Fatal(err)
		}
		us = append(us, u)
	}
	if _, err := n.svc.CreateKey(ctx(), ActorCLI, KeyRequest{UserID: us[0].ID, Type: model.Outline, Trial: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.svc.CreateProxy(ctx(), ActorCLI, ProxyRequest{UserID: us[1].ID, Trial: true}); err != nil {
		t.Fatal(err)
	}
	_, err := n.svc.CreateKey(ctx(), ActorCLI, KeyRequest{UserID: us[2].ID, Type: model.WireGuard, Trial: true})
	if !errors.Is(err, store.ErrTrialBudget) {
		t.Fatalf("third trial: %v, want the daily budget refusal", err)
	}
	if got, _ := n.svc.TrialsToday(ctx()); got != 2 {
		t.Fatalf("trials today %d", got)
	}
	es, _, err := n.svc.Audit(ctx(), store.AuditFilter{UserID: us[2].ID}, store.Page{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	audited := false
	for _, e := range es {
		audited = audited || (e.Action == "key.create/1" && e.Error != "")
	}
	if !audited {
		t.Fatalf("refusal not in the audit trail: %+v", es)
	}
	n.clock.Add(24 * time.Hour)
	if _, err := n.svc.CreateKey(ctx(), ActorCLI, KeyRequest{UserID: us[2].ID, Type: model.WireGuard, Trial: true}); err != nil {
		t.Fatalf("next day: %v", err)
	}
	p.TrialsPerDay = -1
	if err := n.svc.SetPolicy(ctx(), ActorCLI, p); !errors.Is(err, model.ErrInvalid) {
		t.Fatalf("negative budget: %v", err)
	}
}

func TestRevokePlan(t *testing.T) {
	n := newTestNode(t)
	u, _ := n.svc.RegisterUser(ctx(), ActorCLI, NewUser{TelegramID: 31})
	plan, err := n.svc.PutPlan(ctx(), ActorCLI, PlanSpec{Name: "basic", DurationDays: 30, MaxKeys: 2, PriceStars: 100, PriceUSDCents: 199})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.svc.GrantPlan(ctx(), ActorCLI, u.ID, plan.ID, 1, 0); err != nil {
		t.Fatal(err)
	}
	k, err := n.svc.CreateKey(ctx(), ActorCLI, KeyRequest{UserID: u.ID, Type: model.WireGuard})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.svc.RevokePlan(ctx(), ActorCLI, u.ID, "", "abuse"); err != nil {
		t.Fatal(err)
	}
	got, err := n.svc.Key(ctx(), k.ID)
	if err != nil || got.Status != model.KeySuspended || got.Reason != store.ReasonPlanRevoked {
		t.Fatalf("key after revoke: %v %+v", err, got)
	}
	if _, err := n.svc.RevokePlan(ctx(), ActorCLI, u.ID, "", ""); !errors.Is(err, model.ErrNotFound) {
		t.Fatalf("no current plan left: %v", err)
	}
}

func plainHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
