package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
)

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
