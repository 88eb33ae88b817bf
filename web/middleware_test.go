package web

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
)

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
		!strings.Contains(recs[0]["stack"].(string), "middleware_test.go") || recs[0]["route"] != "/boom" {
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
