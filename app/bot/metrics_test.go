package bot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"

	"github.com/usipipo/usipipo/app/bot/bottest"
	"github.com/usipipo/usipipo/app/pay"
)

func scrape(set *metrics.Set) string {
	var b bytes.Buffer
	set.WritePrometheus(&b)
	return b.String()
}

// Every kind is exported at zero before any update, with le buckets and
// the 3 s target among them.
func TestTimingExportedBeforeUpdates(t *testing.T) {
	set := metrics.NewSet()
	NewTiming(set)
	out := scrape(set)
	for _, k := range updateKinds {
		for _, want := range []string{
			fmt.Sprintf(`usipipo_bot_update_duration_seconds_bucket{kind="%s",le="3"} 0`, k),
			fmt.Sprintf(`usipipo_bot_update_duration_seconds_bucket{kind="%s",le="+Inf"} 0`, k),
			fmt.Sprintf(`usipipo_bot_update_duration_seconds_count{kind="%s"} 0`, k),
			fmt.Sprintf(`usipipo_bot_update_errors_total{kind="%s"} 0`, k),
		} {
			if !strings.Contains(out, want+"\n") {
				t.Errorf("missing %q in:\n%s", want, out)
			}
		}
	}
}

// Real updates through the real bot and payment service, timed by kind.
func TestTimingCountsUpdatesByKind(t *testing.T) {
	w := newWorld(t)
	set := metrics.NewSet()
	tm := NewTiming(set)
	w.handler = tm.Wrap(w.handler)
	c := w.chat(5001, "en")
	c.send("/start")
	c.send("/help")
	c.send("hello there")
	w.deliver(bottest.Press(c.u, 1, "not-a-signed-button"))
	w.deliver(bottest.PreCheckout(c.u, "XTR", 100, "bogus-payload"))
	out := scrape(set)
	for kind, n := range map[string]int{KindCommand: 2, KindMessage: 1, KindCallback: 1, KindPayment: 1, KindOther: 0} {
		want := fmt.Sprintf(`usipipo_bot_update_duration_seconds_count{kind="%s"} %d`, kind, n)
		if !strings.Contains(out, want+"\n") {
			t.Errorf("want %q in:\n%s", want, out)
		}
		want = fmt.Sprintf(`usipipo_bot_update_duration_seconds_bucket{kind="%s",le="+Inf"} %d`, kind, n)
		if !strings.Contains(out, want+"\n") {
			t.Errorf("want %q", want)
		}
	}
	if !strings.Contains(out, `usipipo_bot_update_errors_total{kind="command"} 0`) {
		t.Errorf("a handled update counted as an error:\n%s", out)
	}
}

// An update handed back to the intake (to retry) is counted as an error,
// and the error reaches the intake unchanged.
func TestTimingCountsErrors(t *testing.T) {
	set := metrics.NewSet()
	tm := NewTiming(set)
	boom := errors.New("store unavailable")
	h := tm.Wrap(pay.HandlerFunc(func(context.Context, *pay.Update) error { return boom }))
	u, err := pay.DecodeUpdate(bottest.Text(bottest.User{ID: 7, FirstName: "x"}, "hi")(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.HandleUpdate(context.Background(), u); !errors.Is(err, boom) {
		t.Fatalf("error %v, want %v", err, boom)
	}
	if out := scrape(set); !strings.Contains(out, `usipipo_bot_update_errors_total{kind="message"} 1`+"\n") {
		t.Errorf("error not counted:\n%s", out)
	}
}

func TestUpdateKind(t *testing.T) {
	u := bottest.User{ID: 9, FirstName: "k"}
	for _, tc := range []struct {
		raw  []byte
		want string
	}{
		{bottest.Text(u, "/buy")(1), KindCommand},
		{bottest.Text(u, "some text")(2), KindMessage},
		{bottest.Press(u, 3, "x")(3), KindCallback},
		{bottest.PreCheckout(u, "XTR", 5, "p")(4), KindPayment},
		{bottest.Paid(u, "XTR", 5, "p", "ch")(5), KindPayment},
		{[]byte(`{"update_id":6,"edited_message":{"message_id":1,"chat":{"id":1},"text":"/x"}}`), KindOther},
		{[]byte(`{"update_id":7,"callback_query":null}`), KindOther},
	} {
		up, err := pay.DecodeUpdate(tc.raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := UpdateKind(up); got != tc.want {
			t.Errorf("%s: kind %s, want %s", tc.raw, got, tc.want)
		}
	}
	if UpdateKind(nil) != KindOther {
		t.Error("nil update")
	}
}
