package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/gofiber/fiber/v2"
)

func TestNewValidates(t *testing.T) {
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	set := metrics.NewSet()
	for name, opts := range map[string]Options{
		"no logger":      {Metrics: set},
		"no metrics":     {Logger: log},
		"negative first": {Logger: log, Metrics: set, AccessLogFirst: -1},
		"negative then":  {Logger: log, Metrics: set, AccessLogThereafter: -1},
		"nil check":      {Logger: log, Metrics: set, Ready: map[string]func(context.Context) error{"x": nil}},
	} {
		if _, err := New(opts); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestHealthz(t *testing.T) {
	ts := startServer(t, Options{Version: "1.2.3"}, nil)
	r := ts.get("/healthz")
	if r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("content type %q", ct)
	}
	m := r.json(t)
	if m["status"] != "ok" || m["version"] != "1.2.3" {
		t.Errorf("body %v", m)
	}
}

func TestReadyz(t *testing.T) {
	var wgDown sync.Mutex
	var down error
	ts := startServer(t, Options{Ready: map[string]func(context.Context) error{
		"store": func(context.Context) error { return nil },
		"wireguard": func(context.Context) error {
			wgDown.Lock()
			defer wgDown.Unlock()
			return down
		},
	}}, nil)

	r := ts.get("/readyz")
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	m := r.json(t)
	if m["status"] != "ready" {
		t.Errorf("body %v", m)
	}
	if checks, _ := m["checks"].(map[string]any); checks["store"] != "ok" || checks["wireguard"] != "ok" {
		t.Errorf("checks %v", m["checks"])
	}

	wgDown.Lock()
	down = errors.New("interface wg0 is down")
	wgDown.Unlock()
	r = ts.get("/readyz")
	if r.status != 503 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	m = r.json(t)
	checks, _ := m["checks"].(map[string]any)
	if m["status"] != "not_ready" || checks["store"] != "ok" || checks["wireguard"] != "interface wg0 is down" {
		t.Errorf("body %s", r.body)
	}
}

func TestReadyzNoChecks(t *testing.T) {
	ts := startServer(t, Options{}, nil)
	r := ts.get("/readyz")
	if r.status != 200 || !strings.Contains(string(r.body), `"checks":{}`) {
		t.Fatalf("%d %s", r.status, r.body)
	}
}

func TestReadyzTimeoutAndPanic(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	ts := startServer(t, Options{Ready: map[string]func(context.Context) error{
		"honest": func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		},
		"stuck": func(context.Context) error {
			<-release // ignores its context
			return nil
		},
		"buggy": func(context.Context) error { panic("nil map in check") },
		"fine":  func(context.Context) error { return nil },
	}}, func(s *Server) { s.readyTimeout = 200 * time.Millisecond })

	start := time.Now()
	r := ts.get("/readyz")
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("readyz took %s with a 200ms timeout", took)
	}
	if r.status != 503 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	checks, _ := r.json(t)["checks"].(map[string]any)
	if checks["fine"] != "ok" {
		t.Errorf("fine: %v", checks["fine"])
	}
	if s, _ := checks["stuck"].(string); !strings.Contains(s, "timed out") {
		t.Errorf("stuck: %v", checks["stuck"])
	}
	if s, _ := checks["honest"].(string); !strings.Contains(s, "deadline") && !strings.Contains(s, "timed out") {
		t.Errorf("honest: %v", checks["honest"])
	}
	if s, _ := checks["buggy"].(string); s != "check panicked" {
		t.Errorf("buggy: %v", checks["buggy"])
	}
}

func TestMetricsScrape(t *testing.T) {
	ts := startServer(t, Options{}, func(s *Server) {
		s.App().Get("/items/:id", func(c *fiber.Ctx) error { return c.SendString("item " + c.Params("id")) })
	})
	for i := 0; i < 25; i++ {
		if r := ts.get("/items/" + strconv.Itoa(i)); r.status != 200 {
			t.Fatalf("status %d", r.status)
		}
	}
	r := ts.get("/metrics")
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("content type %q", ct)
	}
	samples := ts.scrape()

	want := map[string]string{"method": "GET", "route": "/items/:id"}
	if c := find(samples, "usipipo_http_requests_total", map[string]string{"method": "GET", "route": "/items/:id", "status": "200"}); len(c) != 1 || c[0].value != 25 {
		t.Errorf("request counter: %+v", c)
	}
	buckets := find(samples, "usipipo_http_request_duration_seconds_bucket", want)
	if len(buckets) < 2 {
		t.Fatalf("no histogram buckets for the route: %+v", buckets)
	}
	prevLE, prevCount := math.Inf(-1), -1.0
	for _, b := range buckets {
		le, err := strconv.ParseFloat(b.labels["le"], 64)
		if err != nil {
			t.Fatalf("le %q: %v", b.labels["le"], err)
		}
		if le <= prevLE || b.value < prevCount {
			t.Fatalf("buckets not cumulative: %+v", buckets)
		}
		prevLE, prevCount = le, b.value
	}
	if last := buckets[len(buckets)-1]; last.labels["le"] != "+Inf" || last.value != 25 {
		t.Errorf("+Inf bucket: %+v", last)
	}
	if c := find(samples, "usipipo_http_request_duration_seconds_count", want); len(c) != 1 || c[0].value != 25 {
		t.Errorf("_count: %+v", c)
	}
	if s := find(samples, "usipipo_http_request_duration_seconds_sum", want); len(s) != 1 || s[0].value <= 0 {
		t.Errorf("_sum: %+v", s)
	}
	// The raw text has the form histogram_quantile needs.
	if !regexp.MustCompile(`(?m)^usipipo_http_request_duration_seconds_bucket\{method="GET",route="/items/:id",le="0\.005"\} \d+$`).Match(r.body) {
		t.Errorf("no _bucket{...,le=\"0.005\"} line in:\n%s", r.body)
	}
	// Process metrics are there too.
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "process_resident_memory_bytes"} {
		if len(find(samples, name, nil)) == 0 {
			t.Errorf("no %s", name)
		}
	}
}

func TestMetricsSetsAreSeparate(t *testing.T) {
	a := startServer(t, Options{}, nil)
	b := startServer(t, Options{}, nil)
	for i := 0; i < 3; i++ {
		a.get("/healthz")
	}
	if c := find(b.scrape(), "usipipo_http_requests_total", map[string]string{"route": "/healthz"}); len(c) != 0 {
		t.Errorf("server b's set has server a's requests: %+v", c)
	}
	if c := find(a.scrape(), "usipipo_http_requests_total", map[string]string{"route": "/healthz"}); len(c) != 1 || c[0].value != 3 {
		t.Errorf("server a: %+v", c)
	}
}

func TestRouteLabelBounded(t *testing.T) {
	ts := startServer(t, Options{AccessLogFirst: 1}, func(s *Server) {
		s.App().Get("/users/:id", func(c *fiber.Ctx) error { return c.SendStatus(204) })
		api := s.App().Group("/api/v1")
		api.Get("/peers/:peer/config", func(c *fiber.Ctx) error { return c.SendString("cfg") })
	})
	for i := 0; i < 1000; i++ {
		if r := ts.get(fmt.Sprintf("/no/such/path/%d?x=%d", i, i)); r.status != 404 {
			t.Fatalf("status %d", r.status)
		}
	}
	for i := 0; i < 50; i++ {
		ts.get("/users/" + strconv.Itoa(i))
		ts.get(fmt.Sprintf("/api/v1/peers/p%d/config", i))
	}
	ts.do(http.MethodPost, "/healthz", nil) // 405: no route for the method
	samples := ts.scrape()
	routes := labelValues(samples, "usipipo_http_requests_total", "route")
	want := []string{"/api/v1/peers/:peer/config", "/users/:id", "unmatched"}
	if !slices.Equal(routes, want) {
		t.Errorf("route labels %q, want %q", routes, want)
	}
	series := find(samples, "usipipo_http_requests_total", nil)
	if len(series) > 5 {
		t.Errorf("%d request counter series, want at most 5: %+v", len(series), series)
	}
	if c := find(samples, "usipipo_http_requests_total", map[string]string{"route": "unmatched", "status": "404"}); len(c) != 1 || c[0].value != 1000 {
		t.Errorf("unmatched 404: %+v", c)
	}
	if c := find(samples, "usipipo_http_requests_total", map[string]string{"route": "unmatched", "status": "405", "method": "POST"}); len(c) != 1 {
		t.Errorf("unmatched 405: %+v", c)
	}
	hist := labelValues(samples, "usipipo_http_request_duration_seconds_count", "route")
	if !slices.Equal(hist, want) {
		t.Errorf("histogram routes %q", hist)
	}
}
