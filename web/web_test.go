package web

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
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

func TestRequestID(t *testing.T) {
	ts := startServer(t, Options{}, func(s *Server) {
		s.App().Get("/id", func(c *fiber.Ctx) error {
			return c.SendString(c.Locals("request_id").(string) + " " + RequestID(c))
		})
	})
	hexID := regexp.MustCompile(`^[0-9a-f]{16}$`)

	incoming := "client-req.42_A"
	r := ts.do("GET", "/id", http.Header{"X-Request-Id": {incoming}})
	if got := r.header.Get("X-Request-ID"); got != incoming {
		t.Errorf("echo: got %q", got)
	}
	if string(r.body) != incoming+" "+incoming {
		t.Errorf("locals: %q", r.body)
	}
	max := strings.Repeat("a", 64)
	if got := ts.do("GET", "/id", http.Header{"X-Request-Id": {max}}).header.Get("X-Request-ID"); got != max {
		t.Errorf("64 chars not echoed: %q", got)
	}

	seen := map[string]bool{}
	for _, bad := range []string{"", strings.Repeat("a", 65), "has space", "semi;colon", "ünï", "a/b", `"q"`} {
		h := http.Header{}
		if bad != "" {
			h.Set("X-Request-Id", bad)
		}
		r := ts.do("GET", "/id", h)
		got := r.header.Get("X-Request-ID")
		if !hexID.MatchString(got) {
			t.Errorf("incoming %q: generated id %q is not 16 hex digits", bad, got)
		}
		if string(r.body) != got+" "+got {
			t.Errorf("locals %q, header %q", r.body, got)
		}
		if seen[got] {
			t.Errorf("id %q generated twice", got)
		}
		seen[got] = true
	}
	// Errors carry it too.
	r = ts.do("GET", "/nope", http.Header{"X-Request-Id": {"trace-404"}})
	if r.header.Get("X-Request-ID") != "trace-404" || r.json(t)["request_id"] != "trace-404" {
		t.Errorf("404: header %q body %s", r.header.Get("X-Request-ID"), r.body)
	}
}

func TestPanicRecovered(t *testing.T) {
	const secret = "password=hunter2"
	ts := startServer(t, Options{}, func(s *Server) {
		s.App().Get("/boom", func(c *fiber.Ctx) error { panic("db: " + secret) })
	})
	r := ts.do("GET", "/boom", http.Header{"X-Request-Id": {"panic-1"}})
	if r.status != 500 {
		t.Fatalf("status %d", r.status)
	}
	if ct := r.header.Get("Content-Type"); ct != ProblemContentType {
		t.Errorf("content type %q", ct)
	}
	if strings.Contains(string(r.body), "hunter2") || strings.Contains(string(r.body), "db:") {
		t.Errorf("panic value leaked: %s", r.body)
	}
	m := r.json(t)
	if m["status"] != float64(500) || m["request_id"] != "panic-1" || m["instance"] != "/boom" || m["title"] != "Internal Server Error" {
		t.Errorf("problem %s", r.body)
	}
	// Logged with its stack and request id.
	recs := ts.logs.records(t, "http_panic")
	if len(recs) != 1 {
		t.Fatalf("%d panic log records", len(recs))
	}
	if recs[0]["request_id"] != "panic-1" || !strings.Contains(recs[0]["panic"].(string), secret) ||
		!strings.Contains(recs[0]["stack"].(string), "web_test.go") || recs[0]["route"] != "/boom" {
		t.Errorf("panic log %v", recs[0])
	}
	// Counted and access-logged as a 500 of its route; the server lives on.
	if c := find(ts.scrape(), "usipipo_http_requests_total", map[string]string{"route": "/boom", "status": "500"}); len(c) != 1 || c[0].value != 1 {
		t.Errorf("panic not counted: %+v", c)
	}
	var logged bool
	for _, rec := range ts.logs.records(t, "http_request") {
		if rec["route"] == "/boom" && rec["status"] == float64(500) && rec["level"] == "ERROR" {
			logged = true
		}
	}
	if !logged {
		t.Errorf("panic not in the access log:\n%s", ts.logs.String())
	}
	if r := ts.get("/healthz"); r.status != 200 {
		t.Errorf("after panic: %d", r.status)
	}
}

func TestProblemRendering(t *testing.T) {
	ts := startServer(t, Options{}, func(s *Server) {
		app := s.App()
		app.Post("/users", func(c *fiber.Ctx) error {
			return NewProblem(409, "https://usipipo.dev/problems/user-exists", "User exists", "a user named alice exists")
		})
		app.Get("/wrapped", func(c *fiber.Ctx) error {
			return fmt.Errorf("lookup: %w", NewProblem(404, "", "", "no such peer"))
		})
		app.Get("/internal", func(c *fiber.Ctx) error {
			return errors.New("open /var/lib/usipipo/db: permission denied")
		})
		app.Get("/fiber", func(c *fiber.Ctx) error { return fiber.NewError(fiber.StatusTooManyRequests, "slow down") })
		app.Get("/partial", func(c *fiber.Ctx) error {
			c.Set("Content-Type", "text/html")
			c.WriteString("<html>half")
			return NewProblem(400, "", "", "bad input")
		})
	})

	r := ts.do("POST", "/users", http.Header{"X-Request-Id": {"r1"}})
	if r.status != 409 || r.header.Get("Content-Type") != ProblemContentType {
		t.Fatalf("%d %q", r.status, r.header.Get("Content-Type"))
	}
	m := r.json(t)
	wantFields := map[string]any{
		"type": "https://usipipo.dev/problems/user-exists", "title": "User exists", "status": float64(409),
		"detail": "a user named alice exists", "instance": "/users", "request_id": "r1",
	}
	for k, v := range wantFields {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if len(m) != len(wantFields) {
		t.Errorf("fields %v", m)
	}

	m = ts.get("/wrapped").json(t)
	if m["status"] != float64(404) || m["type"] != "about:blank" || m["title"] != "Not Found" || m["detail"] != "no such peer" {
		t.Errorf("wrapped: %v", m)
	}

	r = ts.do("GET", "/internal", http.Header{"X-Request-Id": {"r-int"}})
	if r.status != 500 || strings.Contains(string(r.body), "permission") || strings.Contains(string(r.body), "/var/lib") {
		t.Errorf("internal error leaked or wrong status: %d %s", r.status, r.body)
	}
	if m := r.json(t); m["detail"] != internalDetail {
		t.Errorf("detail %v", m["detail"])
	}
	var found bool
	for _, rec := range ts.logs.records(t, "http_error") {
		if rec["request_id"] == "r-int" && strings.Contains(rec["error"].(string), "permission denied") {
			found = true
		}
	}
	if !found {
		t.Errorf("internal error not logged with its request id:\n%s", ts.logs.String())
	}

	r = ts.get("/fiber")
	if m := r.json(t); r.status != 429 || m["detail"] != "slow down" || m["title"] != "Too Many Requests" {
		t.Errorf("fiber error: %d %s", r.status, r.body)
	}

	r = ts.get("/partial")
	if r.status != 400 || r.header.Get("Content-Type") != ProblemContentType || strings.Contains(string(r.body), "html") {
		t.Errorf("partial response not replaced: %d %q %s", r.status, r.header.Get("Content-Type"), r.body)
	}

	r = ts.get("/does/not/exist")
	if m := r.json(t); r.status != 404 || r.header.Get("Content-Type") != ProblemContentType || m["instance"] != "/does/not/exist" {
		t.Errorf("404: %d %s", r.status, r.body)
	}
	r = ts.do("DELETE", "/healthz", nil)
	if r.status != 405 || r.header.Get("Content-Type") != ProblemContentType {
		t.Errorf("405: %d %s", r.status, r.body)
	}
}

func TestBodyLimit(t *testing.T) {
	ts := startServer(t, Options{}, func(s *Server) {
		s.App().Post("/upload", func(c *fiber.Ctx) error { return c.SendString(strconv.Itoa(len(c.Body()))) })
	})
	// A body just at the limit is fine.
	req, _ := http.NewRequest("POST", ts.url+"/upload", strings.NewReader(strings.Repeat("x", BodyLimit)))
	resp, err := ts.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != strconv.Itoa(BodyLimit) {
		t.Fatalf("at limit: %d %s", resp.StatusCode, b)
	}
	// Over it: refused from the header alone, as a problem.
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", BodyLimit+1)
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 413 || res.Header.Get("Content-Type") != ProblemContentType {
		t.Fatalf("over limit: %d %q %s", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	if id := res.Header.Get("X-Request-ID"); len(id) != 16 || !strings.Contains(string(body), id) {
		t.Errorf("request id %q, body %s", id, body)
	}
}

func TestAccessLog(t *testing.T) {
	ts := startServer(t, Options{AccessLogFirst: 2, AccessLogThereafter: 0}, func(s *Server) {
		s.slowRequest = 50 * time.Millisecond
		s.App().Get("/fail", func(c *fiber.Ctx) error { return errors.New("x") })
		s.App().Get("/slow", func(c *fiber.Ctx) error {
			time.Sleep(60 * time.Millisecond)
			return c.SendString("done")
		})
		s.App().Get("/users/:id", func(c *fiber.Ctx) error { return c.SendStatus(204) })
	})
	first := time.Now().Unix()
	for i := 0; i < 20; i++ {
		ts.do("GET", "/users/"+strconv.Itoa(i), http.Header{"X-Request-Id": {"u" + strconv.Itoa(i)}})
	}
	seconds := int(time.Now().Unix()-first) + 1 // the 20 requests ran within these
	for i := 0; i < 5; i++ {
		ts.get("/fail")
	}
	for i := 0; i < 3; i++ {
		ts.get("/slow")
	}
	var ordinary, fails, slows int
	for _, rec := range ts.logs.records(t, "http_request") {
		for _, k := range []string{"method", "route", "path", "status", "duration_ms", "ip", "request_id"} {
			if _, ok := rec[k]; !ok {
				t.Fatalf("record lacks %s: %v", k, rec)
			}
		}
		switch rec["route"] {
		case "/users/:id":
			ordinary++
			if !strings.HasPrefix(rec["path"].(string), "/users/") || rec["status"] != float64(204) ||
				rec["ip"] != "127.0.0.1" || rec["method"] != "GET" || rec["level"] != "INFO" ||
				rec["request_id"] != "u"+strings.TrimPrefix(rec["path"].(string), "/users/") {
				t.Errorf("record %v", rec)
			}
		case "/fail":
			fails++
			if rec["level"] != "ERROR" || rec["status"] != float64(500) {
				t.Errorf("record %v", rec)
			}
		case "/slow":
			slows++
			if d, _ := rec["duration_ms"].(float64); d < 50 {
				t.Errorf("slow request logged with %vms", d)
			}
		}
	}
	// The first 2 in each second.
	if ordinary < 2 || ordinary > 2*seconds {
		t.Errorf("%d ordinary requests logged in %d seconds, want the first 2 per second", ordinary, seconds)
	}
	if fails != 5 {
		t.Errorf("%d of 5 failing requests logged", fails)
	}
	if slows != 3 {
		t.Errorf("%d of 3 slow requests logged", slows)
	}
}

func TestSampler(t *testing.T) {
	s := newSampler(3, 5)
	var got []int
	for i := 1; i <= 20; i++ {
		if s.allow(100) {
			got = append(got, i)
		}
	}
	if want := []int{1, 2, 3, 8, 13, 18}; !slices.Equal(got, want) {
		t.Errorf("second 100: logged %v, want %v", got, want)
	}
	first, second, third, fourth := s.allow(101), s.allow(101), s.allow(101), s.allow(101)
	if !first || !second || !third || fourth {
		t.Error("a new second does not start over")
	}

	all := newSampler(0, 0)
	none := newSampler(1, 0)
	for i := 0; i < 10; i++ {
		if !all.allow(1) {
			t.Fatal("0/0 must log everything")
		}
		if none.allow(1) != (i == 0) {
			t.Fatal("1/0 must log only the first per second")
		}
	}
	every := newSampler(0, 4)
	n := 0
	for i := 0; i < 40; i++ {
		if every.allow(7) {
			n++
		}
	}
	if n != 10 {
		t.Errorf("0/4: %d of 40", n)
	}
}

func TestSamplerConcurrent(t *testing.T) {
	s := newSampler(10, 7)
	const workers, each = 8, 1000
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for i := 0; i < each; i++ {
				if s.allow(42) {
					n++
				}
			}
			mu.Lock()
			total += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	if want := 10 + (workers*each-10)/7; total != want {
		t.Errorf("logged %d, want exactly %d", total, want)
	}
}

func TestShutdownWaitsForInFlight(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	ts := startServer(t, Options{}, func(s *Server) {
		s.App().Get("/slow", func(c *fiber.Ctx) error {
			close(started)
			<-release
			return c.SendString("finished")
		})
	})
	type result struct {
		status int
		body   string
		err    error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := ts.client.Get(ts.url + "/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- result{resp.StatusCode, string(b), err}
	}()
	<-started

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- ts.Shutdown(ctx)
	}()
	// New connections are refused while the request runs.
	deadline := time.Now().Add(2 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", ts.addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting connections after Shutdown")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) with a request in flight", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	r := <-got
	if r.err != nil || r.status != 200 || r.body != "finished" {
		t.Fatalf("in-flight request: %+v", r)
	}
	select {
	case err := <-shut:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return after the request finished")
	}
	select {
	case err := <-ts.served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
		ts.served <- nil // for the cleanup
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	// Serve after Shutdown closes the listener and returns nil.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	if err := ts.Serve(ln); err != nil {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("listener left open: %v", err)
	}
}

func TestShutdownDeadline(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	ts := startServer(t, Options{}, func(s *Server) {
		s.App().Get("/stuck", func(c *fiber.Ctx) error {
			close(started)
			<-release
			return nil
		})
	})
	errc := make(chan error, 1)
	go func() {
		resp, err := ts.client.Get(ts.url + "/stuck")
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		errc <- err
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := ts.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want deadline exceeded", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Shutdown took %s", took)
	}
	select {
	case err := <-errc:
		if err == nil {
			t.Error("client got a response from a handler that never finished")
		}
	case <-time.After(5 * time.Second):
		t.Error("connection not closed at the deadline")
	}
}

func TestRouteLabelMiddleware(t *testing.T) {
	if routeUseField() == nil {
		t.Fatal("fiber.Route has no use flag any more: routeLabel falls back; update isMiddleware")
	}
	for _, fallback := range []bool{false, true} {
		t.Run(fmt.Sprintf("fallback=%v", fallback), func(t *testing.T) {
			ts := startServer(t, Options{}, func(s *Server) {
				if fallback {
					s.routeUseField = nil
				}
				api := s.App().Group("/api")
				api.Use(func(c *fiber.Ctx) error {
					if c.Get("Authorization") == "" {
						return NewProblem(401, "", "", "no credentials")
					}
					return c.Next()
				})
				api.Get("/things/:id", func(c *fiber.Ctx) error { return c.SendString("thing") })
			})
			auth := http.Header{"Authorization": {"Bearer x"}}
			ts.do("GET", "/api/things/1", auth)
			ts.do("GET", "/api/things/2", nil) // 401 from the prefix middleware
			ts.do("GET", "/nothing", nil)      // 404
			samples := ts.scrape()
			if c := find(samples, "usipipo_http_requests_total", map[string]string{"route": "/api/things/:id", "status": "200"}); len(c) != 1 {
				t.Errorf("matched route: %+v", c)
			}
			if c := find(samples, "usipipo_http_requests_total", map[string]string{"route": "unmatched", "status": "404"}); len(c) != 1 {
				t.Errorf("404: %+v", c)
			}
			want := "unmatched"
			if fallback {
				want = "/api" // without the flag a prefix middleware's pattern is used: still bounded
			}
			if c := find(samples, "usipipo_http_requests_total", map[string]string{"route": want, "status": "401"}); len(c) != 1 {
				t.Errorf("401 from middleware: want route %q: %+v", want, find(samples, "usipipo_http_requests_total", map[string]string{"status": "401"}))
			}
		})
	}
}
