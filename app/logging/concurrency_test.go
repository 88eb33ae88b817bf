package logging_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"github.com/usipipo/usipipo/app/logging"
)

// callWriter records every Write call separately, with no locking of its
// own: the handler must serialise (the race detector checks).
type callWriter struct{ calls [][]byte }

func (w *callWriter) Write(p []byte) (int, error) {
	w.calls = append(w.calls, bytes.Clone(p))
	return len(p), nil
}

func TestConcurrentWritersWholeLines(t *testing.T) {
	const goroutines, records = 16, 400
	w := &callWriter{}
	root := logging.New(w, "vpn-service", slog.LevelDebug)
	var wg sync.WaitGroup
	for g := range goroutines {
		// each goroutine has its own derived logger, as libraries do
		l := logging.ForService(root.With(logging.UserID, fmt.Sprint("u", g)).WithGroup("g"), fmt.Sprint("svc", g%3))
		wg.Go(func() {
			for i := range records {
				l.Info("tick", "i", i, "pad", string(bytes.Repeat([]byte{'x'}, i)))
			}
		})
	}
	wg.Wait()
	if len(w.calls) != goroutines*records {
		t.Fatalf("%d writes, want %d", len(w.calls), goroutines*records)
	}
	seen := map[string]int{}
	for _, c := range w.calls {
		if bytes.IndexByte(c, '\n') != len(c)-1 {
			t.Fatalf("a write is not exactly one line: %q", c)
		}
		var line struct {
			UserID  string `json:"user_id"`
			Details struct{ G struct{ I int } }
		}
		if err := json.Unmarshal(c, &line); err != nil {
			t.Fatalf("bad line %q: %v", c, err)
		}
		seen[line.UserID]++
	}
	for g := range goroutines {
		if n := seen[fmt.Sprint("u", g)]; n != records {
			t.Errorf("u%d: %d lines, want %d", g, n, records)
		}
	}
}
