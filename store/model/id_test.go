package model

import (
	"crypto/rand"
	"sort"
	"testing"
	"time"
)

func TestIDsSortByTimeAndValidate(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ids []string
	for i := range 200 {
		id, err := NewID(base.Add(time.Duration(i)*time.Millisecond), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if !ValidID(id) {
			t.Fatalf("%q not valid", id)
		}
		ids = append(ids, id)
	}
	if !sort.StringsAreSorted(ids) {
		t.Fatal("ids do not sort in creation order")
	}
	for _, bad := range []string{"", "x", ids[0] + "a", ids[0][:25] + "u", "../../../../../etc/passwd00", "8" + ids[0][1:]} {
		if ValidID(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzValidID(f *testing.F) {
	f.Add("01m8hzp2tz42egj454rqky0r91")
	f.Fuzz(func(t *testing.T, s string) {
		if ValidID(s) && (len(s) != IDLen || s[0] > '7') {
			t.Fatalf("%q accepted", s)
		}
	})
}

func TestRoleAt(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	u := User{Roles: []RoleGrant{{Role: RoleSuperadmin, ExpiresAt: now}, {Role: RoleAdmin}}}
	if got := u.RoleAt(now); got != RoleAdmin {
		t.Fatalf("expired superadmin grant: role %s", got)
	}
	if got := u.RoleAt(now.Add(-time.Second)); got != RoleSuperadmin {
		t.Fatalf("role %s", got)
	}
}
