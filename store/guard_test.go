package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usipipo/usipipo/store/model"
)

// A user erased with a trial guard and registered again under the same guard
// has no trials left; another guard starts fresh.
func TestTrialGuardSurvivesErasure(t *testing.T) {
	s, g := openTest(t), newIDs(3)
	guard := fmt.Sprintf("%064x", 42)
	u := newUser(g, epoch, 77)
	u.TrialGuard = guard
	mustDo(t, s, epoch, u)
	mustDo(t, s, epoch, newKey(g, epoch, u.ID, ByTrial))
	mustDo(t, s, epoch, EraseUser{UserID: u.ID, TrialGuard: guard})

	again := newUser(g, epoch, 77)
	again.TrialGuard = guard
	mustDo(t, s, epoch, again)
	if err := s.Do(context.Background(), meta(epoch), newKey(g, epoch, again.ID, ByTrial)); !errors.Is(err, model.ErrTrialUsed) {
		t.Fatalf("trial after erase and re-register: %v, want ErrTrialUsed", err)
	}
	k := newKey(g, epoch, again.ID, ByTrial)
	k.Type = model.Outline // not used before erasure: still available
	mustDo(t, s, epoch, k)

	other := newUser(g, epoch, 78)
	other.TrialGuard = fmt.Sprintf("%064x", 43)
	mustDo(t, s, epoch, other)
	mustDo(t, s, epoch, newKey(g, epoch, other.ID, ByTrial))

	bad := newUser(g, epoch, 79)
	bad.TrialGuard = "not-hex"
	if err := s.Do(context.Background(), meta(epoch), bad); !errors.Is(err, model.ErrInvalid) {
		t.Fatalf("malformed guard: %v", err)
	}
}

// The daily budget counts every trial of the UTC day, refuses the one past
// it, and starts again the next day.
func TestTrialBudgetPerDay(t *testing.T) {
	s, g := openTest(t), newIDs(4)
	var users []string
	for i := range 4 {
		u := newUser(g, epoch, int64(100+i))
		mustDo(t, s, epoch, u)
		users = append(users, u.ID)
	}
	trial := func(at time.Time, user string) error {
		k := newKey(g, at, user, ByTrial)
		k.TrialBudget = 2
		return s.Do(context.Background(), meta(at), k)
	}
	for _, u := range users[:2] {
		if err := trial(epoch, u); err != nil {
			t.Fatal(err)
		}
	}
	if err := trial(epoch, users[2]); !errors.Is(err, ErrTrialBudget) || !errors.Is(err, model.ErrTrialDisabled) {
		t.Fatalf("third trial of the day: %v, want ErrTrialBudget", err)
	}
	// A proxy trial counts against the same budget.
	p := CreateProxy{ID: g.next(epoch), UserID: users[3], Node: "n1", Grant: ByTrial, Secret: model.Sealed("s"),
		Limits: model.Limits{ExpiresAt: epoch.Add(time.Hour)}, TrialBudget: 2}
	if err := s.Do(context.Background(), meta(epoch), p); !errors.Is(err, ErrTrialBudget) {
		t.Fatalf("proxy trial past the budget: %v", err)
	}
	// The refusal is in the audit trail with its reason.
	es, _, err := s.Audit(AuditFilter{UserID: users[2]}, Page{Limit: 10})
	if err != nil || !slices.ContainsFunc(es, func(e model.AuditEntry) bool {
		return e.Action == "key.create/1" && strings.Contains(e.Error, "trials are all given out")
	}) {
		t.Fatalf("refusal not audited: %+v, %v", es, err)
	}
	if n, err := s.TrialsToday(epoch); err != nil || n != 2 {
		t.Fatalf("trials today = %d, %v", n, err)
	}
	next := epoch.Add(24 * time.Hour)
	if err := trial(next, users[2]); err != nil {
		t.Fatalf("next day: %v", err)
	}
}

func TestSpendCredits(t *testing.T) {
	w := newPayWorld(t)
	mustDo(t, w.s, w.at, AddCredits{Entry: model.CreditEntry{ID: w.g.next(w.at), UserID: w.user, Amount: 100,
		Reason: "gift", IdempotencyKey: "gift1"}})
	spend := SpendCredits{EntryID: w.g.next(w.at), UserID: w.user, Product: model.Product{Kind: "slots", Qty: 2},
		Cost: 60, IdempotencyKey: "spend-a"}
	mustDo(t, w.s, w.at, spend)
	spend.EntryID = w.g.next(w.at)
	mustDo(t, w.s, w.at, spend) // a retry: no second debit, no second grant
	u, err := w.s.User(w.user)
	if err != nil {
		t.Fatal(err)
	}
	if bal, _ := w.s.Balance(w.user); bal != 40 || u.ExtraSlots != 2 {
		t.Fatalf("balance %d slots %d, want 40 and 2", bal, u.ExtraSlots)
	}
	short := SpendCredits{EntryID: w.g.next(w.at), UserID: w.user, Product: model.Product{Kind: "slots", Qty: 1},
		Cost: 41, IdempotencyKey: "spend-b"}
	if err := w.s.Do(context.Background(), meta(w.at), short); !errors.Is(err, model.ErrBalance) {
		t.Fatalf("short balance: %v", err)
	}
	// Data for a capped key of the user's plan.
	mustDo(t, w.s, w.at, GrantPlan{SubID: w.g.next(w.at), UserID: w.user, PlanID: w.plan.ID, Months: 1, Source: "t"})
	k := w.key()
	data := SpendCredits{EntryID: w.g.next(w.at), UserID: w.user, Product: model.Product{Kind: ProductData, RefID: k.ID, Qty: 1 << 20},
		Cost: 40, IdempotencyKey: "spend-c"}
	mustDo(t, w.s, w.at, data)
	got, err := w.s.Key(k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Limits.DataCap != k.Limits.DataCap+1<<20 {
		t.Fatalf("cap %d, want %d", got.Limits.DataCap, k.Limits.DataCap+1<<20)
	}
	if bal, _ := w.s.Balance(w.user); bal != 0 {
		t.Fatalf("balance %d", bal)
	}
	credits := SpendCredits{EntryID: w.g.next(w.at), UserID: w.user, Product: model.Product{Kind: "credits", Qty: 1},
		Cost: 1, IdempotencyKey: "spend-d"}
	if err := w.s.Do(context.Background(), meta(w.at), credits); !errors.Is(err, model.ErrInvalid) {
		t.Fatalf("credits for credits: %v", err)
	}
}

func TestRevokeSubscription(t *testing.T) {
	w := newPayWorld(t)
	sub := w.g.next(w.at)
	mustDo(t, w.s, w.at, GrantPlan{SubID: sub, UserID: w.user, PlanID: w.plan.ID, Months: 1, Source: "admin"})
	k := w.key()
	mustDo(t, w.s, w.at, RevokeSubscription{UserID: w.user, SubID: sub, Reason: "abuse"})
	got, err := w.s.Key(k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != model.KeySuspended || got.Reason != ReasonPlanRevoked {
		t.Fatalf("key %s/%s after revoke", got.Status, got.Reason)
	}
	subs, _, err := w.s.Subscriptions(w.user, Page{Limit: MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(subs, func(s model.Subscription) bool { return s.ID == sub })
	if i < 0 || subs[i].Status != model.SubCancelled {
		t.Fatalf("subscription not cancelled: %+v", subs)
	}
	if err := w.s.Do(context.Background(), meta(w.at), RevokeSubscription{UserID: w.user, SubID: sub}); !errors.Is(err, model.ErrState) {
		t.Fatalf("second revoke: %v", err)
	}
	if err := w.s.Do(context.Background(), meta(w.at), newKey(w.g, w.at, w.user, ByPlan)); !errors.Is(err, model.ErrQuota) {
		t.Fatalf("key after the plan was revoked: %v", err)
	}
}
