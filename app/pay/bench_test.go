package pay

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// BenchmarkPaymentUpdates measures successful_payment updates processed end
// to end — getUpdates from the stand-in, persisted, granted through
// store.SettlePayment, receipt sent with sendMessage — with at most 1, 8 or
// 64 payments in flight, and reports updates/s and the p50/p99 latency from
// the update's arrival at the stand-in to the user's receipt.
// The persist-first variants are the intake's old order (an update
// handled only after its fsync): the same-run baseline.
func BenchmarkPaymentUpdates(b *testing.B) {
	for _, persistFirst := range []bool{false, true} {
		prefix := ""
		if persistFirst {
			prefix = "persist-first/"
		}
		for _, inflight := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("%sinflight=%d", prefix, inflight), func(b *testing.B) { benchPayments(b, inflight, persistFirst) })
		}
	}
}

func benchPayments(b *testing.B, inflight int, persistFirst bool) {
	w := newWorld(b)
	w.svc.admins = nil // one receipt per payment; admin notices are the same call
	type buyer struct {
		tg      int64
		payload string
	}
	buyers := make([]buyer, b.N)
	var ops []store.Op
	m := store.Meta{At: w.clock.Now(), Actor: "bench"}
	for i := range buyers {
		uid := w.id()
		tgSeq++
		ops = append(ops, store.Op{Meta: m, Cmd: store.CreateUser{ID: uid, TelegramID: tgSeq, UserKey: model.Sealed("k"),
			Language: "es", ReferralCode: "b" + uid[14:]}})
		pid := w.id()
		payload := w.svc.Payload(Stars, pid)
		ops = append(ops, store.Op{Meta: m, Cmd: store.CreatePayment{Payment: model.Payment{ID: pid, UserID: uid, Provider: Stars,
			Amount: 100, Currency: XTR, Product: model.Product{Kind: KindCredits, Qty: 100}, Payload: payload}}})
		buyers[i] = buyer{tgSeq, payload}
	}
	for len(ops) > 0 {
		n := min(len(ops), 2000)
		for _, err := range w.st.DoOps(context.Background(), ops[:n]) {
			if err != nil {
				b.Fatal(err)
			}
		}
		ops = ops[n:]
	}
	var mu sync.Mutex
	pushed := map[int64]time.Time{}
	lat := make([]time.Duration, 0, b.N)
	window := make(chan struct{}, inflight)
	done := make(chan struct{})
	w.bot.onSend = func(chat int64) {
		mu.Lock()
		t0, ok := pushed[chat]
		if ok {
			lat = append(lat, time.Since(t0))
			delete(pushed, chat)
		}
		n := len(lat)
		mu.Unlock()
		if ok {
			<-window
			if n == b.N {
				close(done)
			}
		}
	}
	stop := w.startPollerWith("", persistFirst)
	defer stop()
	b.ResetTimer()
	start := time.Now()
	for i, by := range buyers {
		window <- struct{}{}
		mu.Lock()
		pushed[by.tg] = time.Now()
		mu.Unlock()
		w.bot.push(paidUpdate(by.tg, 100, by.payload, "bench-"+by.payload[:26]+string(rune('a'+i%26))))
	}
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatal("receipts missing")
	}
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "updates/s")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
}
