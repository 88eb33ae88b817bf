package app

import (
	"errors"
	"testing"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

func TestListUsersFilters(t *testing.T) {
	n := newTestNode(t)
	var ids []string
	for i := 0; i < 7; i++ {
		u, err := n.svc.RegisterUser(ctx(), ActorCLI, NewUser{TelegramID: int64(10 + i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, u.ID)
		if i%2 == 0 {
			if err := n.svc.Ban(ctx(), ActorCLI, u.ID, "x"); err != nil {
				t.Fatal(err)
			}
		}
	}
	yes := true
	var got []string
	p := store.Page{Limit: 2}
	for {
		us, next, err := n.svc.ListUsers(ctx(), UserFilter{Banned: &yes}, p)
		if err != nil {
			t.Fatal(err)
		}
		if len(us) > 2 {
			t.Fatalf("page of %d", len(us))
		}
		for _, u := range us {
			if !u.Banned {
				t.Fatalf("unbanned user %s listed", u.ID)
			}
			got = append(got, u.ID)
		}
		if next == "" {
			break
		}
		p.After = next
	}
	want := map[string]bool{ids[0]: true, ids[2]: true, ids[4]: true, ids[6]: true}
	for _, id := range got {
		if !want[id] {
			t.Fatalf("user %s listed as banned", id)
		}
		delete(want, id)
	}
	if len(want) != 0 {
		t.Fatalf("banned users missing: %v", want)
	}
	us, _, err := n.svc.ListUsers(ctx(), UserFilter{Query: "11"}, store.Page{})
	if err != nil || len(us) != 1 || us[0].ID != ids[1] {
		t.Fatalf("query: %v %v", us, err)
	}
	us, _, err = n.svc.ListUsers(ctx(), UserFilter{Query: "11", Banned: &yes}, store.Page{})
	if err != nil || len(us) != 0 {
		t.Fatalf("query with filter: %v %v", us, err)
	}
}

func TestCachedUserFollowsVersions(t *testing.T) {
	n := newTestNode(t)
	u, err := n.svc.RegisterUser(ctx(), ActorCLI, NewUser{TelegramID: 5, FirstName: "Ana"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := n.svc.CachedUser(ctx(), u.ID)
	if err != nil || v.Personal.FirstName != "Ana" || v.User.Personal != nil {
		t.Fatalf("%+v %v", v, err)
	}
	if _, err := n.svc.AddCredits(ctx(), ActorCLI, u.ID, 7, "gift", "k1"); err != nil {
		t.Fatal(err)
	}
	if v, _ = n.svc.CachedUser(ctx(), u.ID); v.Balance != 7 {
		t.Fatalf("balance %d", v.Balance)
	}
	if err := n.svc.Erase(ctx(), ActorCLI, u.ID); err != nil {
		t.Fatal(err)
	}
	if v, _ = n.svc.CachedUser(ctx(), u.ID); !v.Erased || v.Personal.FirstName != "" {
		t.Fatalf("erased user still shows personal data: %+v", v)
	}
	if _, err := n.svc.CachedUser(ctx(), "bad"); !errors.Is(err, model.ErrInvalid) {
		t.Fatal(err)
	}
}

func TestAdminLoginAndPasswordChange(t *testing.T) {
	n := newTestNode(t)
	pw, err := n.svc.ResetAdminPassword(ctx(), ActorCLI, "root")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.svc.CheckAdminLogin(ctx(), "root", pw, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := n.svc.CheckAdminLogin(ctx(), "root", "nope", ""); !errors.Is(err, ErrUnauthorized) {
		t.Fatal(err)
	}
	if err := n.svc.ChangeAdminPassword(ctx(), ActorCLI, "root", pw, "short"); !errors.Is(err, model.ErrInvalid) {
		t.Fatal(err)
	}
	if err := n.svc.ChangeAdminPassword(ctx(), ActorCLI, "root", pw, "long-enough-password"); err != nil {
		t.Fatal(err)
	}
	if _, err := n.svc.CheckAdminLogin(ctx(), "root", "long-enough-password", ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := n.svc.Audit(ctx(), store.AuditFilter{Action: "x"}, store.Page{}); !errors.Is(err, model.ErrInvalid) {
		t.Fatal(err)
	}
}
