package notify

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// The daily report covers the previous UTC day and goes out at the first
// scan of the next one. Its traffic is the growth of all credentials'
// counters since the previous report, whose total is kept as a checkpoint.
const (
	ckReportDay     = "notify/report_day"
	ckReportTraffic = "notify/report_traffic"
)

func (n *Notifier) hasAdmins() bool {
	return n.tg != nil && len(n.o.AdminChats) > 0 || n.mail != nil && len(n.o.AdminEmails) > 0
}

func (n *Notifier) dailyReport(ctx context.Context, now time.Time) error {
	if !n.hasAdmins() {
		return nil
	}
	day := now.UTC().Truncate(24 * time.Hour).Add(-24 * time.Hour)
	date := day.Format("2006-01-02")
	last, err := n.st.GetTelemetry(store.Checkpoints, ckReportDay)
	if err != nil || string(last) == date {
		return err
	}
	r, err := n.report(day)
	if err != nil {
		return fmt.Errorf("daily report: %w", err)
	}
	prev, err := n.st.GetTelemetry(store.Checkpoints, ckReportTraffic)
	if err != nil {
		return err
	}
	traffic := "—"
	if p, err := strconv.ParseUint(string(prev), 10, 64); err == nil && r.traffic >= p {
		traffic = humanBytes(r.traffic - p)
	}
	err = n.notifyAdmins(ctx, adminNote{kind: "report", subject: date, telegram: true, textID: "admin_report",
		args: []string{"date", date, "users", strconv.Itoa(r.users), "new_users", strconv.Itoa(r.newUsers),
			"keys", strconv.Itoa(r.activeKeys), "revenue", r.revenue(), "traffic", traffic}}, nil)
	if err != nil {
		return ignoreNotSent(err)
	}
	return n.st.PutTelemetry(store.Checkpoints, map[string][]byte{ckReportDay: []byte(date),
		ckReportTraffic: []byte(strconv.FormatUint(r.traffic, 10))})
}

type report struct {
	users, newUsers, activeKeys int
	stars, cents                int64
	traffic                     uint64 // all credentials' counters now
}

func (r report) revenue() string {
	var parts []string
	if r.stars != 0 || r.cents == 0 {
		parts = append(parts, formatAmount(r.stars, "XTR"))
	}
	if r.cents != 0 {
		parts = append(parts, formatAmount(r.cents, "USD"))
	}
	return strings.Join(parts, " + ")
}

// report gathers the figures. It reads every user, payment and credential
// once: a daily cost of well under a second at the stated capacity.
func (n *Notifier) report(day time.Time) (report, error) {
	var r report
	end := day.Add(24 * time.Hour)
	in := func(t time.Time) bool { return !t.Before(day) && t.Before(end) }
	err := eachPage(func(p store.Page) (int, string, error) {
		us, next, err := n.st.Users(p)
		for _, u := range us {
			if !u.Erased {
				r.users++
			}
			if in(u.Created) {
				r.newUsers++
			}
		}
		return len(us), next, err
	})
	if err != nil {
		return r, err
	}
	err = eachPage(func(p store.Page) (int, string, error) {
		ps, next, err := n.st.Payments("", p)
		for _, pm := range ps {
			if pm.Status != model.PayPaid || !in(pm.PaidAt) {
				continue
			}
			if strings.EqualFold(pm.Currency, "USD") {
				r.cents += pm.Amount
			} else {
				r.stars += pm.Amount
			}
		}
		return len(ps), next, err
	})
	if err != nil {
		return r, err
	}
	for _, proxies := range []bool{false, true} {
		if err := n.st.EachActiveVersion(proxies, func(_, _ string, _ uint64) error { r.activeKeys++; return nil }); err != nil {
			return r, err
		}
	}
	err = eachPage(func(p store.Page) (int, string, error) {
		ks, next, err := n.st.Keys(store.KeyFilter{}, p)
		for _, k := range ks {
			r.traffic += k.Usage.Total()
		}
		return len(ks), next, err
	})
	if err != nil {
		return r, err
	}
	err = eachPage(func(p store.Page) (int, string, error) {
		ps, next, err := n.st.Proxies("", p)
		for _, px := range ps {
			r.traffic += px.Usage.Total()
		}
		return len(ps), next, err
	})
	return r, err
}

// eachPage calls list for every page of a store list.
func eachPage(list func(store.Page) (int, string, error)) error {
	p := store.Page{Limit: store.MaxLimit}
	for {
		_, next, err := list(p)
		if err != nil || next == "" {
			return err
		}
		p.After = next
	}
}
