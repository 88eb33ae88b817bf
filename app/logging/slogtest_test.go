package logging_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
	"testing/slogtest"

	"github.com/usipipo/usipipo/app/logging"
)

// TestSlogConformance runs the standard library's handler tests. They look
// for attributes at the top of the record, so the result is read back with
// details lifted up and action, timestamp named as slog names them.
func TestSlogConformance(t *testing.T) {
	var b bytes.Buffer
	slogtest.Run(t, func(*testing.T) slog.Handler {
		b.Reset()
		return logging.New(&b, "test", slog.LevelDebug).Handler()
	}, func(t *testing.T) map[string]any {
		var line map[string]any
		if err := json.Unmarshal(b.Bytes(), &line); err != nil {
			t.Fatalf("%q: %v", b.String(), err)
		}
		m := map[string]any{slog.LevelKey: line["level"], slog.MessageKey: line["action"]}
		if ts, ok := line["timestamp"]; ok {
			m[slog.TimeKey] = ts
		}
		if d, ok := line["details"].(map[string]any); ok {
			for k, v := range d {
				m[k] = v
			}
		}
		return m
	})
}
