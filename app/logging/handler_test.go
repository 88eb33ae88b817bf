package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app/logging"
)

var at = time.Date(2025, 10, 22, 12, 0, 0, 0, time.UTC)

// handle sends one record at a fixed time straight to l's handler.
func handle(t *testing.T, l *slog.Logger, level slog.Level, msg string, args ...any) {
	t.Helper()
	r := slog.NewRecord(at, level, msg, 0)
	r.Add(args...)
	if err := l.Handler().Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
}

// parseLines decodes JSON lines, numbers kept as json.Number.
func parseLines(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(string(b)) {
		if !strings.HasSuffix(line, "\n") {
			t.Fatalf("line without newline: %q", line)
		}
		d := json.NewDecoder(strings.NewReader(line))
		d.UseNumber()
		var m map[string]any
		if err := d.Decode(&m); err != nil {
			t.Fatalf("bad JSON line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// TestSeedExample produces the seed's example line byte for byte.
func TestSeedExample(t *testing.T) {
	var b bytes.Buffer
	l := logging.New(&b, "vpn-service", nil)
	handle(t, l, slog.LevelInfo, "create_config",
		logging.IP, "192.168.1.1", logging.UserID, "uuid", "vpn_type", "wireguard",
		logging.Duration(150*time.Millisecond))
	want := `{"timestamp":"2025-10-22T12:00:00.000Z","level":"INFO","service":"vpn-service","user_id":"uuid","action":"create_config","details":{"vpn_type":"wireguard"},"duration_ms":150,"ip":"192.168.1.1"}` + "\n"
	if b.String() != want {
		t.Errorf("got  %s\nwant %s", b.String(), want)
	}
}

// TestGolden logs records and compares the parsed lines field by field.
func TestGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		log  func(t *testing.T, l *slog.Logger)
		want map[string]any
	}{
		{"bare", func(t *testing.T, l *slog.Logger) { handle(t, l, slog.LevelWarn, "disk_low") },
			map[string]any{"timestamp": "2025-10-22T12:00:00.000Z", "level": "WARN", "service": "api", "action": "disk_low"}},
		{"levels", func(t *testing.T, l *slog.Logger) { handle(t, l, slog.LevelError, "x") },
			map[string]any{"timestamp": "2025-10-22T12:00:00.000Z", "level": "ERROR", "service": "api", "action": "x"}},
		{"user id as number becomes a string", func(t *testing.T, l *slog.Logger) {
			handle(t, l, slog.LevelInfo, "pay", logging.UserID, int64(123456789), logging.IP, netip.MustParseAddr("2001:db8::1"))
		}, map[string]any{"timestamp": "2025-10-22T12:00:00.000Z", "level": "INFO", "service": "api", "action": "pay",
			"user_id": "123456789", "ip": "2001:db8::1"}},
		{"duration kinds", func(t *testing.T, l *slog.Logger) {
			handle(t, l.With(logging.DurationMS, 5), slog.LevelInfo, "a", logging.DurationMS, 1500*time.Microsecond)
		}, map[string]any{"timestamp": "2025-10-22T12:00:00.000Z", "level": "INFO", "service": "api", "action": "a",
			"duration_ms": json.Number("1.5")}},
		{"duration that is not a number stays in details", func(t *testing.T, l *slog.Logger) {
			handle(t, l, slog.LevelInfo, "a", logging.DurationMS, "slow")
		}, map[string]any{"timestamp": "2025-10-22T12:00:00.000Z", "level": "INFO", "service": "api", "action": "a",
			"details": map[string]any{"duration_ms": "slow"}}},
		{"service attribute", func(t *testing.T, l *slog.Logger) {
			handle(t, l, slog.LevelInfo, "a", logging.Service, "bot")
		}, map[string]any{"timestamp": "2025-10-22T12:00:00.000Z", "level": "INFO", "service": "bot", "action": "a"}},
		{"value kinds", func(t *testing.T, l *slog.Logger) {
			handle(t, l, slog.LevelDebug, "kinds",
				"s", "x\"y\n<&>", "i", -3, "u", uint64(7), "f", 0.25, "nan", slog.Float64Value(nanf()).Float64(),
				"b", true, "d", 90*time.Second, "t", at.Add(time.Nanosecond), "err", errors.New("boom"),
				"addr", netip.MustParseAddr("10.0.0.1"), "raw", json.RawMessage(`{"k": [1, 2]}`),
				"list", []string{"a"}, "bytes", []byte("hi"), "nil", nil, "struct", struct{ A int }{1},
				"bad", badMarshaler{}, "panics", (*panicky)(nil))
		}, map[string]any{"timestamp": "2025-10-22T12:00:00.000Z", "level": "DEBUG", "service": "api", "action": "kinds",
			"details": map[string]any{"s": "x\"y\n<&>", "i": json.Number("-3"), "u": json.Number("7"),
				"f": json.Number("0.25"), "nan": "NaN", "b": true, "d": "1m30s", "t": "2025-10-22T12:00:00.000000001Z",
				"err": "boom", "addr": "10.0.0.1", "raw": map[string]any{"k": []any{json.Number("1"), json.Number("2")}},
				"list": []any{"a"}, "bytes": "aGk=", "nil": nil, "struct": map[string]any{"A": json.Number("1")},
				"bad":    "!ERROR: cannot marshal", // see below
				"panics": "!PANIC: runtime error: invalid memory address or nil pointer dereference"}}},
		{"nested groups", func(t *testing.T, l *slog.Logger) {
			handle(t, l, slog.LevelInfo, "create_config", "vpn_type", "wireguard",
				slog.Group("peer", "allowed", "10.66.0.2/32", slog.Group("limits", "mbps", 10, slog.Group("empty"))),
				slog.Group("", "inlined", 1), slog.Group("empty"), slog.Attr{})
		}, map[string]any{"timestamp": "2025-10-22T12:00:00.000Z", "level": "INFO", "service": "api", "action": "create_config",
			"details": map[string]any{"vpn_type": "wireguard", "inlined": json.Number("1"),
				"peer": map[string]any{"allowed": "10.66.0.2/32", "limits": map[string]any{"mbps": json.Number("10")}}}}},
		{"a group inside a group does not hoist", func(t *testing.T, l *slog.Logger) {
			handle(t, l, slog.LevelInfo, "dial", slog.Group("upstream", logging.IP, "203.0.113.9"), slog.Group("", logging.UserID, "u1"))
		}, map[string]any{"timestamp": "2025-10-22T12:00:00.000Z", "level": "INFO", "service": "api", "action": "dial",
			"user_id": "u1", "details": map[string]any{"upstream": map[string]any{"ip": "203.0.113.9"}}}},
		{"LogValuer resolved", func(t *testing.T, l *slog.Logger) {
			handle(t, l, slog.LevelInfo, "a", "who", valuer{slog.GroupValue(slog.String("name", "ana"))}, logging.UserID, valuer{slog.StringValue("u2")})
		}, map[string]any{"timestamp": "2025-10-22T12:00:00.000Z", "level": "INFO", "service": "api", "action": "a",
			"user_id": "u2", "details": map[string]any{"who": map[string]any{"name": "ana"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			tc.log(t, logging.New(&b, "api", slog.LevelDebug))
			got := parseLines(t, b.Bytes())
			// encoding/json words the error its own way: keep only its start and our reason.
			if d, ok := got[0]["details"].(map[string]any); ok {
				if bad, ok := d["bad"].(string); ok && strings.HasPrefix(bad, "!ERROR:") && strings.HasSuffix(bad, "cannot marshal") {
					d["bad"] = "!ERROR: cannot marshal"
				}
			}
			if len(got) != 1 || !reflect.DeepEqual(got[0], tc.want) {
				t.Errorf("got  %v\nwant %v\nline %s", got, tc.want, b.String())
			}
		})
	}
}

type valuer struct{ v slog.Value }

func (v valuer) LogValue() slog.Value { return v.v }

type badMarshaler struct{}

func (badMarshaler) MarshalJSON() ([]byte, error) { return nil, errors.New("cannot marshal") }

type panicky struct{ s string }

func (p *panicky) MarshalText() ([]byte, error) { return []byte(p.s), nil }

func nanf() float64 { var z float64; return z / z }

// TestWithSemantics: attributes given through With and groups opened with
// WithGroup, as a library receiving a logger would use them.
func TestWithSemantics(t *testing.T) {
	var b bytes.Buffer
	root := logging.New(&b, "api", nil)
	withUser := root.With(logging.UserID, "u1", "request", 7)
	grouped := withUser.WithGroup("wg").With("peer", "p1", logging.IP, "198.51.100.1").WithGroup("handshake")

	grouped.Info("handshake_ok", "rtt_ms", 12)                           // 0
	grouped.Info("handshake_ok")                                         // 1: empty group left out
	grouped.Info("a", logging.UserID, "u2")                              // 2: the record's user_id wins
	withUser.Info("b")                                                   // 3: parent unchanged by children
	root.Info("c")                                                       // 4
	withUser.WithGroup("empty").Info("d")                                // 5
	logging.ForService(grouped, "vpn-service").Info("e")                 // 6
	root.With(logging.UserID, "u3").With(logging.UserID, "u4").Info("f") // 7
	root.WithGroup("g").With(slog.Group("", "x", 1)).Info("g")           // 8

	lines := parseLines(t, b.Bytes())
	want := []map[string]any{
		{"service": "api", "action": "handshake_ok", "user_id": "u1", "ip": "198.51.100.1",
			"details": map[string]any{"request": json.Number("7"), "wg": map[string]any{"peer": "p1", "handshake": map[string]any{"rtt_ms": json.Number("12")}}}},
		{"service": "api", "action": "handshake_ok", "user_id": "u1", "ip": "198.51.100.1",
			"details": map[string]any{"request": json.Number("7"), "wg": map[string]any{"peer": "p1"}}},
		{"service": "api", "action": "a", "user_id": "u2", "ip": "198.51.100.1",
			"details": map[string]any{"request": json.Number("7"), "wg": map[string]any{"peer": "p1"}}},
		{"service": "api", "action": "b", "user_id": "u1", "details": map[string]any{"request": json.Number("7")}},
		{"service": "api", "action": "c"},
		{"service": "api", "action": "d", "user_id": "u1", "details": map[string]any{"request": json.Number("7")}},
		{"service": "vpn-service", "action": "e", "user_id": "u1", "ip": "198.51.100.1",
			"details": map[string]any{"request": json.Number("7"), "wg": map[string]any{"peer": "p1"}}},
		{"service": "api", "action": "f", "user_id": "u4"},
		{"service": "api", "action": "g", "details": map[string]any{"g": map[string]any{"x": json.Number("1")}}},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), b.String())
	}
	for i, line := range lines {
		ts, _ := line["timestamp"].(string)
		if _, err := time.Parse("2006-01-02T15:04:05.000Z", ts); err != nil || line["level"] != "INFO" {
			t.Errorf("line %d: timestamp %q level %v", i, ts, line["level"])
		}
		delete(line, "timestamp")
		delete(line, "level")
		if !reflect.DeepEqual(line, want[i]) {
			t.Errorf("line %d:\n got %v\nwant %v", i, line, want[i])
		}
	}
}

func TestLevelFiltering(t *testing.T) {
	var b bytes.Buffer
	var level slog.LevelVar
	level.Set(slog.LevelWarn)
	l := logging.New(&b, "store", &level)
	l.Debug("d")
	l.Info("i")
	l.Warn("w")
	l.Error("e")
	level.Set(slog.LevelDebug)
	l.Debug("d2")
	var got []string
	for _, line := range parseLines(t, b.Bytes()) {
		got = append(got, line["level"].(string)+" "+line["action"].(string))
	}
	if want := []string{"WARN w", "ERROR e", "DEBUG d2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if logging.New(&b, "x", nil).Enabled(context.Background(), slog.LevelDebug) {
		t.Error("a nil level should mean info")
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteErrorReturned(t *testing.T) {
	r := slog.NewRecord(at, slog.LevelInfo, "x", 0)
	if err := logging.New(failingWriter{}, "x", nil).Handler().Handle(context.Background(), r); err == nil || err.Error() != "disk full" {
		t.Errorf("got %v", err)
	}
}

func TestZeroTimeOmitted(t *testing.T) {
	var b bytes.Buffer
	logging.New(&b, "x", nil).Handler().Handle(context.Background(), slog.NewRecord(time.Time{}, slog.LevelInfo, "x", 0))
	if want := `{"level":"INFO","service":"x","action":"x"}` + "\n"; b.String() != want {
		t.Errorf("got %s want %s", b.String(), want)
	}
}

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]float64{150 * time.Millisecond: 150, 1500 * time.Microsecond: 1.5, 2 * time.Second: 2000, 0: 0} {
		if a := logging.Duration(d); a.Key != "duration_ms" || a.Value.Float64() != want {
			t.Errorf("Duration(%v) = %v", d, a)
		}
	}
}
