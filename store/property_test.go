package store

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/usipipo/usipipo/store/model"
)

// gen produces random, often invalid, command streams over a small world so
// that commands collide: quotas fill, trials repeat, states conflict.
type gen struct {
	r                      *rand.Rand
	ids                    *ids
	at                     time.Time
	users, plans, keys     []string
	proxies, pays, tickets []string
	tg                     int64
	owner                  map[string]string // key → user, for data packages
	payKind                map[string]string // payment → product kind
	subs                   []GrantPlan
}

func newGen(seed uint64) *gen {
	return &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e37)), ids: newIDs(byte(seed)), at: epoch}
}

// once is mostly no idempotency key, else one of a few, so repeats occur
// across command kinds and must change nothing.
func (g *gen) once() string {
	if g.r.IntN(3) > 0 {
		return ""
	}
	return fmt.Sprintf("once%d", g.r.IntN(30))
}

func (g *gen) pick(xs []string) string {
	if len(xs) == 0 || g.r.IntN(20) == 0 {
		return g.ids.next(g.at) // sometimes an unknown id
	}
	return xs[g.r.IntN(len(xs))]
}

func (g *gen) op() Op {
	g.at = g.at.Add(time.Duration(g.r.IntN(3600)) * time.Second)
	var c Command
	switch n := g.r.IntN(21); {
	case n == 0 || len(g.users) < 3:
		g.tg++
		u := newUser(g.ids, g.at, g.tg%50) // Telegram ids repeat: some creations must fail
		if g.r.IntN(2) == 0 {
			u.TrialGuard = fmt.Sprintf("%064x", g.r.IntN(5))
		}
		if len(g.users) > 0 && g.r.IntN(2) == 0 {
			u.ReferredBy, u.ReferralCredits = g.pick(g.users), 10
		}
		g.users = append(g.users, u.ID)
		c = u
	case n == 1 || len(g.plans) == 0:
		p := testPlan(g.ids, g.r.IntN(4))
		g.plans = append(g.plans, p.ID)
		c = PutPlan{Plan: p}
	case n == 2:
		gp := GrantPlan{SubID: g.ids.next(g.at), UserID: g.pick(g.users), PlanID: g.pick(g.plans), Months: 1 + g.r.IntN(3), Source: "gen", Once: g.once()}
		g.subs = append(g.subs, gp)
		c = gp
	case n <= 5:
		grant := []Grant{ByPlan, ByTrial, ByAdmin}[g.r.IntN(3)]
		k := newKey(g.ids, g.at, g.pick(g.users), grant)
		if g.r.IntN(2) == 0 {
			k.AddrV4 = fmt.Sprintf("10.66.0.%d", g.r.IntN(30))
		}
		if g.r.IntN(3) == 0 { // an Outline key with a dynamic token; hashes repeat: some creations must fail
			k.Type, k.Dynamic, k.DynHash = model.Outline, model.Sealed("tok"), fmt.Sprintf("%064x", g.r.IntN(20))
		}
		k.Once = g.once()
		g.keys = append(g.keys, k.ID)
		if g.owner == nil {
			g.owner = map[string]string{}
		}
		g.owner[k.ID] = k.UserID
		c = k
	case n == 6:
		st := []model.KeyStatus{model.KeyActive, model.KeySuspended, model.KeyRevoked}[g.r.IntN(3)]
		c = SetKeyStatus{KeyID: g.pick(g.keys), Status: st}
	case n == 7:
		u := UpdateKey{KeyID: g.pick(g.keys), Name: "renamed", Secret: model.Sealed("rotated"), Public: "pub", Once: g.once()}
		if g.r.IntN(3) == 0 {
			u.Dynamic, u.DynHash = model.Sealed("tok2"), fmt.Sprintf("%064x", g.r.IntN(20))
		}
		c = u
	case n == 8:
		c = ExpireKeys{KeyIDs: []string{g.pick(g.keys), g.pick(g.keys)}}
	case n == 9:
		p := CreateProxy{ID: g.ids.next(g.at), UserID: g.pick(g.users), Node: "n1", Grant: ByPlan, Secret: model.Sealed("s"), Once: g.once()}
		g.proxies = append(g.proxies, p.ID)
		c = p
	case n == 10:
		c = SetProxyStatus{ProxyID: g.pick(g.proxies), Status: model.KeyRevoked}
	case n == 11:
		products := []model.Product{{Kind: "plan", RefID: g.pick(g.plans), Months: 1 + g.r.IntN(2)},
			{Kind: "credits", Qty: 30}, {Kind: "slots", Qty: 1}, {Kind: ProductData, RefID: g.pick(g.keys), Qty: 1 << 28}}
		p := model.Payment{ID: g.ids.next(g.at), UserID: g.pick(g.users), Provider: "stars", Amount: 100, Currency: "XTR",
			Product: products[g.r.IntN(len(products))]}
		if u, ok := g.owner[p.Product.RefID]; ok && g.r.IntN(4) > 0 {
			p.UserID = u
		}
		g.pays = append(g.pays, p.ID)
		if g.payKind == nil {
			g.payKind = map[string]string{}
		}
		g.payKind[p.ID] = p.Product.Kind
		c = CreatePayment{Payment: p}
	case n == 12:
		pay := g.pick(g.pays)
		if (g.payKind[pay] == ProductData) != (g.r.IntN(8) == 0) {
			c = SettleDataPayment{PaymentID: pay, ChargeID: fmt.Sprintf("ch%d", g.r.IntN(40)), Amount: 100,
				Currency: "XTR", VestID: g.ids.next(g.at)}
		} else {
			c = SettlePayment{PaymentID: pay, ChargeID: fmt.Sprintf("ch%d", g.r.IntN(40)), Amount: 100,
				Currency: "XTR", SubID: g.ids.next(g.at), EntryID: g.ids.next(g.at), VestID: g.ids.next(g.at)}
		}
	case n == 13:
		c = AddCredits{Entry: model.CreditEntry{ID: g.ids.next(g.at), UserID: g.pick(g.users), Amount: int64(g.r.IntN(40) - 20),
			Reason: "gen", IdempotencyKey: fmt.Sprintf("idem%d", g.r.IntN(60))}}
	case n == 14:
		if g.r.IntN(2) == 0 {
			t := OpenTicket{ID: g.ids.next(g.at), UserID: g.pick(g.users), Subject: model.Sealed("s"), Text: model.Sealed("t"), Once: g.once()}
			g.tickets = append(g.tickets, t.ID)
			c = t
		} else {
			c = ReplyTicket{TicketID: g.pick(g.tickets), From: "admin", Text: model.Sealed("r"), Status: model.TicketClosed, Once: g.once()}
		}
	case n == 15:
		var d []UsageDelta
		for range 3 {
			d = append(d, UsageDelta{ID: g.pick(g.keys), Rx: uint64(g.r.IntN(1 << 29)), Tx: 7})
		}
		c = UsageBatch{Node: "n1", Start: g.at.Add(-time.Second), End: g.at, Deltas: d}
	case n == 16 || n == 17:
		c = RefundPayment{PaymentID: g.pick(g.pays), RefundID: fmt.Sprintf("ch%d", g.r.IntN(40)), EntryID: g.ids.next(g.at),
			VestEntryID: g.ids.next(g.at), Reason: "gen"}
	case n == 18:
		c = ExpirePayment{PaymentID: g.pick(g.pays)}
	case n == 19:
		c = RejectPayment{Provider: "qvapay", Event: "callback", UserID: g.pick(g.users), Ref: "t", Why: "gen"}
	default:
		switch g.r.IntN(12) {
		case 0:
			c = EraseUser{UserID: g.pick(g.users), TrialGuard: fmt.Sprintf("%064x", g.r.IntN(5))}
		case 8:
			products := []model.Product{{Kind: "slots", Qty: 1}, {Kind: ProductData, RefID: g.pick(g.keys), Qty: 1 << 28}}
			c = SpendCredits{EntryID: g.ids.next(g.at), UserID: g.pick(g.users), Product: products[g.r.IntN(2)],
				Cost: int64(1 + g.r.IntN(30)), IdempotencyKey: fmt.Sprintf("spend%d", g.r.IntN(30))}
		case 9:
			rs := RevokeSubscription{UserID: g.pick(g.users), SubID: g.ids.next(g.at), Reason: "gen"}
			if len(g.subs) > 0 {
				gp := g.subs[g.r.IntN(len(g.subs))]
				rs.UserID, rs.SubID = gp.UserID, gp.SubID
			}
			c = rs
		case 10, 11:
			k := newKey(g.ids, g.at, g.pick(g.users), ByTrial)
			k.Type, k.TrialBudget = []model.KeyType{model.WireGuard, model.Outline}[g.r.IntN(2)], 1+g.r.IntN(3)
			g.keys = append(g.keys, k.ID)
			c = k
		case 1:
			c = PruneAudit{Before: g.at.Add(-48 * time.Hour), Max: 1 + g.r.IntN(40)}
		case 2:
			c = g.adminOp()
		case 3: // cutoffs sometimes too recent, so some are refused
			c = Housekeep{OnceBefore: g.at.Add(-time.Duration(12+g.r.IntN(72)) * time.Hour),
				TrialDaysBefore: g.at.Add(-time.Duration(g.r.IntN(4)-1) * 24 * time.Hour), Max: 1 + g.r.IntN(20)}
		default:
			c = SetBanned{UserID: g.pick(g.users), Banned: g.r.IntN(2) == 0}
		}
	}
	return Op{Meta: meta(g.at), Cmd: c}
}

// adminOp is a panel-login command over three names, one never created:
// enrolments, recovery codes spent twice, failed logins.
func (g *gen) adminOp() Command {
	name := fmt.Sprintf("adm%d", g.r.IntN(3))
	hash := func() string { return fmt.Sprintf("%064x", g.r.IntN(4)) }
	switch g.r.IntN(4) {
	case 0:
		if name == "adm2" {
			name = "adm0"
		}
		return PutAdmin{Username: name, PasswordHash: "h"}
	case 1:
		t := SetAdminTOTP{Username: name}
		if g.r.IntN(4) > 0 {
			t.TOTP, t.Recovery = model.Sealed("seed"), []string{hash(), hash()}
		}
		return t
	case 2:
		return UseRecoveryCode{Username: name, Hash: hash()}
	}
	return RecordLoginFailure{Via: []string{"panel", "api", "bot"}[g.r.IntN(3)], Username: name, IP: "192.0.2.1"}
}

func (g *gen) ops(n int) []Op {
	out := make([]Op, n)
	for i := range out {
		out[i] = g.op()
	}
	return out
}

// applyGrouped applies ops in random-sized groups, like the committer does.
func applyGrouped(t *testing.T, s *Store, ops []Op, r *rand.Rand) (accepted int) {
	for len(ops) > 0 {
		n := min(len(ops), 1+r.IntN(16))
		errs, err := s.ApplyBatch(ops[:n])
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range errs {
			if e == nil {
				accepted++
			}
		}
		ops = ops[n:]
	}
	return accepted
}

// Every index equals its rebuild after random command streams, and the same
// stream applied to two stores, grouped differently, leaves the same bytes in
// every bucket.
func TestRandomStreamsKeepIndexesAndDeterminism(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			ops := newGen(seed).ops(600)
			a, b := openTest(t), openTest(t)
			acc := applyGrouped(t, a, ops, rand.New(rand.NewPCG(seed, 1)))
			applyGrouped(t, b, ops, rand.New(rand.NewPCG(seed, 2)))
			if acc < 100 || acc > 580 {
				t.Errorf("%d of 600 accepted: the generator should make both kinds", acc)
			}
			if err := a.CheckIndexes(); err != nil {
				t.Fatal(err)
			}
			if err := equalDumps(dump(t, a), dump(t, b)); err != nil {
				t.Fatalf("stores diverged: %v", err)
			}
		})
	}
}

// Serialised envelopes replay to the same state: what a cluster log needs.
func TestEnvelopeReplay(t *testing.T) {
	ops := newGen(99).ops(400)
	a, b := openTest(t), openTest(t)
	applyGrouped(t, a, ops, rand.New(rand.NewPCG(1, 1)))
	replayed := make([]Op, len(ops))
	for i, op := range ops {
		env, err := Seal(op)
		if err != nil {
			t.Fatal(err)
		}
		if replayed[i], err = env.Open(); err != nil {
			t.Fatal(err)
		}
	}
	applyGrouped(t, b, replayed, rand.New(rand.NewPCG(1, 1)))
	if err := equalDumps(dump(t, a), dump(t, b)); err != nil {
		t.Fatalf("replay diverged: %v", err)
	}
	if _, err := (Envelope{Kind: "nope/1"}).Open(); err == nil {
		t.Fatal("unknown kind accepted")
	}
}

// Pagination hands out every record exactly once, at every page size, while
// writes go on between pages.
func TestPaginationExactlyOnce(t *testing.T) {
	s := openTest(t)
	g := newGen(5)
	applyGrouped(t, s, g.ops(500), rand.New(rand.NewPCG(3, 3)))
	all, next, err := s.Users(Page{Limit: MaxLimit})
	if err != nil || next != "" {
		t.Fatalf("all users: %v %q", err, next)
	}
	for _, limit := range []int{1, 2, 7, 50} {
		seen := map[string]int{}
		var p Page
		p.Limit = limit
		for {
			page, next, err := s.Users(p)
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range page {
				seen[u.ID]++
			}
			// A write between pages must not disturb the walk.
			applyGrouped(t, s, []Op{g.op()}, rand.New(rand.NewPCG(1, 1)))
			if next == "" {
				break
			}
			p.After = next
		}
		for _, u := range all {
			if seen[u.ID] != 1 {
				t.Fatalf("limit %d: user %s seen %d times", limit, u.ID, seen[u.ID])
			}
		}
	}
	// Newest-first lists too.
	entries, _, _ := s.Audit(AuditFilter{}, Page{Limit: MaxLimit})
	seen := map[uint64]bool{}
	p := Page{Limit: 3}
	for {
		page, next, err := s.Audit(AuditFilter{}, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			if seen[e.Seq] {
				t.Fatalf("audit %d twice", e.Seq)
			}
			seen[e.Seq] = true
		}
		if next == "" || len(seen) >= len(entries) {
			break
		}
		p.After = next
	}
	for _, e := range entries {
		if !seen[e.Seq] {
			t.Fatalf("audit %d missed", e.Seq)
		}
	}
	if _, _, err := s.Users(Page{After: "!!"}); err == nil {
		t.Error("garbage cursor accepted")
	}
}
