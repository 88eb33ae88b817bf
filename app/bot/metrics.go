package bot

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/usipipo/usipipo/app/pay"
)

// Update kinds, the label of the bot's timing metrics. A fixed, small set:
// never a command's or button's name, which users choose.
const (
	KindCommand  = "command"  // a message starting with "/"
	KindMessage  = "message"  // any other message (a flow's answer, a photo…)
	KindCallback = "callback" // an inline button press
	KindPayment  = "payment"  // pre-checkout query, successful or refunded payment
	KindOther    = "other"    // what the bot does not answer (edits, channel posts…)
)

var updateKinds = []string{KindCommand, KindMessage, KindCallback, KindPayment, KindOther}

// updateBuckets are the histogram's upper bounds in seconds. 3 s, the
// response target, is a bound so "p99 over 3 s" is measured, not
// interpolated across a wide bucket.
var updateBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30}

// Timing measures the bot's response time: how long handling one update
// takes, from the intake handing it over to the handler returning (the
// replies sent to Telegram included).
//
// usipipo_bot_update_duration_seconds{kind} is a Prometheus histogram
// (le buckets); usipipo_bot_update_errors_total{kind} counts updates the
// handler gave back to the intake to retry. Every kind is registered at
// creation, so the series exist (at zero) on a node without a bot token and
// dashboards and alerts see them from the first scrape.
type Timing struct {
	seconds map[string]*metrics.PrometheusHistogram
	errors  map[string]*metrics.Counter
	now     func() time.Time
}

// NewTiming registers the bot's timing metrics on set.
func NewTiming(set *metrics.Set) *Timing {
	t := &Timing{seconds: map[string]*metrics.PrometheusHistogram{}, errors: map[string]*metrics.Counter{}, now: time.Now}
	for _, k := range updateKinds {
		t.seconds[k] = set.NewPrometheusHistogramExt(`usipipo_bot_update_duration_seconds{kind="`+k+`"}`, updateBuckets)
		t.errors[k] = set.NewCounter(`usipipo_bot_update_errors_total{kind="` + k + `"}`)
	}
	return t
}

// Wrap returns next timed: the handler the intake calls.
func (t *Timing) Wrap(next pay.Handler) pay.Handler {
	return pay.HandlerFunc(func(ctx context.Context, u *pay.Update) error {
		start := t.now()
		err := next.HandleUpdate(ctx, u)
		kind := UpdateKind(u)
		t.seconds[kind].Update(t.now().Sub(start).Seconds())
		if err != nil {
			t.errors[kind].Inc()
		}
		return err
	})
}

// UpdateKind classifies an update for the timing metrics.
func UpdateKind(u *pay.Update) string {
	switch {
	case u == nil:
		return KindOther
	case u.PreCheckoutQuery != nil:
		return KindPayment
	case u.Message != nil && (u.Message.SuccessfulPayment != nil || u.Message.RefundedPayment != nil):
		return KindPayment
	case u.Message != nil && strings.HasPrefix(u.Message.Text, "/"):
		return KindCommand
	case u.Message != nil:
		return KindMessage
	}
	// Only the key's presence matters; its contents stay undecoded.
	var cb struct {
		CallbackQuery json.RawMessage `json:"callback_query"`
	}
	if json.Unmarshal(u.Raw, &cb) == nil && len(cb.CallbackQuery) > 0 && string(cb.CallbackQuery) != "null" {
		return KindCallback
	}
	return KindOther
}
