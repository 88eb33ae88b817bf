package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// logBuf collects JSON log lines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// records returns the log records with message msg.
func (l *logBuf) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", line, err)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

type testServer struct {
	*Server
	t      *testing.T
	addr   string
	url    string
	logs   *logBuf
	set    *metrics.Set
	client *http.Client
	served chan error
}

// startServer starts a Server on 127.0.0.1:0. setup, if not nil, runs
// before Serve (to add routes or change test knobs).
func startServer(t *testing.T, opts Options, setup func(s *Server)) *testServer {
	t.Helper()
	logs := &logBuf{}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.NewSet()
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(s)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{
		Server: s,
		t:      t,
		addr:   ln.Addr().String(),
		url:    "http://" + ln.Addr().String(),
		logs:   logs,
		set:    opts.Metrics,
		served: make(chan error, 1),
		client: &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second},
	}
	go func() { ts.served <- s.Serve(ln) }()
	t.Cleanup(func() {
		ts.client.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		select {
		case err := <-ts.served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after Shutdown")
		}
	})
	return ts
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not JSON: %q: %v", r.body, err)
	}
	return m
}

func (ts *testServer) do(method, path string, header http.Header) response {
	ts.t.Helper()
	req, err := http.NewRequest(method, ts.url+path, nil)
	if err != nil {
		ts.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := ts.client.Do(req)
	if err != nil {
		ts.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		ts.t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, body}
}

func (ts *testServer) get(path string) response {
	ts.t.Helper()
	return ts.do(http.MethodGet, path, nil)
}

// sample is one line of the Prometheus text format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// parsePrometheus checks text against the Prometheus text exposition
// format (version 0.0.4) and returns its samples.
func parsePrometheus(text string) ([]sample, error) {
	var out []sample
	for n, line := range strings.Split(text, "\n") {
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "#") {
			f := strings.Fields(line)
			if len(f) >= 2 && (f[1] == "HELP" || f[1] == "TYPE") && len(f) < 3 {
				return nil, fmt.Errorf("line %d: bad %s comment %q", n+1, f[1], line)
			}
			continue
		}
		s, err := parseSampleLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %q: %w", n+1, line, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func isNameChar(c byte, first bool) bool {
	return c == '_' || c == ':' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || !first && '0' <= c && c <= '9'
}

func parseSampleLine(line string) (sample, error) {
	s := sample{labels: map[string]string{}}
	i := 0
	for i < len(line) && isNameChar(line[i], i == 0) {
		i++
	}
	if i == 0 {
		return s, fmt.Errorf("no metric name")
	}
	s.name = line[:i]
	if i < len(line) && line[i] == '{' {
		i++
		for {
			if i < len(line) && line[i] == '}' {
				i++
				break
			}
			j := i
			for j < len(line) && isNameChar(line[j], j == i) && line[j] != ':' {
				j++
			}
			if j == i || j+1 >= len(line) || line[j] != '=' || line[j+1] != '"' {
				return s, fmt.Errorf("bad label at %d", i)
			}
			name := line[i:j]
			i = j + 2
			var v strings.Builder
			for {
				if i >= len(line) {
					return s, fmt.Errorf("unterminated label value")
				}
				c := line[i]
				if c == '"' {
					i++
					break
				}
				if c == '\\' {
					if i+1 >= len(line) {
						return s, fmt.Errorf("bad escape")
					}
					switch line[i+1] {
					case '\\':
						v.WriteByte('\\')
					case '"':
						v.WriteByte('"')
					case 'n':
						v.WriteByte('\n')
					default:
						return s, fmt.Errorf("bad escape \\%c", line[i+1])
					}
					i += 2
					continue
				}
				v.WriteByte(c)
				i++
			}
			if _, dup := s.labels[name]; dup {
				return s, fmt.Errorf("duplicate label %s", name)
			}
			s.labels[name] = v.String()
			for i < len(line) && line[i] == ' ' {
				i++
			}
			if i < len(line) && line[i] == ',' {
				i++
			}
			for i < len(line) && line[i] == ' ' {
				i++
			}
		}
	}
	rest := strings.Fields(line[i:])
	if len(rest) < 1 || len(rest) > 2 || !strings.HasPrefix(line[i:], " ") {
		return s, fmt.Errorf("want ' value [timestamp]'")
	}
	v, err := strconv.ParseFloat(rest[0], 64)
	if err != nil {
		return s, fmt.Errorf("value: %w", err)
	}
	s.value = v
	if len(rest) == 2 {
		if _, err := strconv.ParseInt(rest[1], 10, 64); err != nil {
			return s, fmt.Errorf("timestamp: %w", err)
		}
	}
	return s, nil
}

// find returns the samples named name whose labels include want.
func find(samples []sample, name string, want map[string]string) []sample {
	var out []sample
next:
	for _, s := range samples {
		if s.name != name {
			continue
		}
		for k, v := range want {
			if s.labels[k] != v {
				continue next
			}
		}
		out = append(out, s)
	}
	return out
}

func labelValues(samples []sample, name, label string) []string {
	seen := map[string]bool{}
	for _, s := range samples {
		if s.name == name {
			seen[s.labels[label]] = true
		}
	}
	var out []string
	for v := range seen {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

func (ts *testServer) scrape() []sample {
	ts.t.Helper()
	r := ts.get("/metrics")
	if r.status != 200 {
		ts.t.Fatalf("/metrics: %d", r.status)
	}
	samples, err := parsePrometheus(string(r.body))
	if err != nil {
		ts.t.Fatalf("/metrics is not Prometheus text: %v", err)
	}
	return samples
}
