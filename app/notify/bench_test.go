package notify

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

const benchUsers = 2000

// benchUsersIn stores benchUsers users in one batch.
func benchUsersIn(b *testing.B, e *env) {
	at := e.clock.Now()
	ops := make([]store.Op, 0, benchUsers)
	for i := range benchUsers {
		id, err := model.NewID(at, rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		lang := "es"
		if i%2 == 0 {
			lang = "en"
		}
		ops = append(ops, store.Op{Meta: store.Meta{At: at, Actor: "bench"}, Cmd: store.CreateUser{ID: id,
			TelegramID: int64(100_000 + i), UserKey: []byte("k"), Language: lang, ReferralCode: fmt.Sprintf("r%d", i)}})
	}
	for _, err := range e.st.DoOps(context.Background(), ops) {
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBroadcastPlanner measures what a broadcast costs per recipient
// besides the Bot API request: "baseline" only pages through the users
// (what any broadcast must read), "plan" adds the segment filter and the
// receipt lookup, "receipts" the pending and sent receipts of 30 concurrent
// senders (group-committed, fsynced).
func BenchmarkBroadcastPlanner(b *testing.B) {
	e := newEnv(b)
	benchUsersIn(b, e)
	n := e.notifier()
	perRecipient := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchUsers), "ns/recipient")
	}
	pages := func(visit func([]model.User)) {
		p := store.Page{Limit: pageSize}
		for {
			us, next, err := n.st.Users(p)
			if err != nil {
				b.Fatal(err)
			}
			visit(us)
			if next == "" {
				return
			}
			p.After = next
		}
	}
	b.Run("baseline", func(b *testing.B) {
		for b.Loop() {
			pages(func([]model.User) {})
		}
		perRecipient(b)
	})
	b.Run("plan", func(b *testing.B) {
		for b.Loop() {
			pick, err := n.picker(Segment{Language: "en"})
			if err != nil {
				b.Fatal(err)
			}
			pages(func(us []model.User) {
				for _, u := range pick.filter(us) {
					if _, err := n.rc.state(recipientKey("01m72n8mg0j9f3g8bz2jj7kec5", u.ID)); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		perRecipient(b)
	})
	b.Run("receipts", func(b *testing.B) {
		round := 0
		for b.Loop() {
			round++
			var wg sync.WaitGroup
			work := make(chan int)
			for range 30 {
				wg.Go(func() {
					for i := range work {
						key := fmt.Sprintf("bcast/bench%d/%d", round, i)
						n.rc.once(key, time.Now, func(claim func() error) outcome {
							if claim() != nil {
								return outRetry
							}
							return outSent
						})
					}
				})
			}
			for i := range benchUsers / 10 {
				work <- i
			}
			close(work)
			wg.Wait()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchUsers/10), "ns/recipient")
	})
}
