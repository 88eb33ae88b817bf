package web

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// BenchmarkMiddlewareOverhead sends the same request, one at a time over
// one keep-alive loopback connection each, to a bare fiber app and to a
// Server with the full middleware stack, alternating between the two, and
// reports the mean latency of each and their ratio (full/bare).
//
//	go test -run '^$' -bench MiddlewareOverhead ./web
func BenchmarkMiddlewareOverhead(b *testing.B) {
	for _, tc := range []struct {
		name        string
		first, then int
	}{
		{"sampled", 100, 100}, // production-like access log sampling
		{"log-all", 0, 0},     // a JSON access log line for every request
	} {
		b.Run(tc.name, func(b *testing.B) { benchOverhead(b, tc.first, tc.then) })
	}
}

func benchOverhead(b *testing.B, first, then int) {
	handler := func(c *fiber.Ctx) error { return c.SendString("peer " + c.Params("id")) }

	bare := fiber.New(fiber.Config{DisableStartupMessage: true})
	bare.Get("/peers/:id", handler)
	bareLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go bare.Listener(bareLn)
	defer bare.Shutdown()

	s, err := New(Options{
		Logger:              slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Metrics:             metrics.NewSet(),
		AccessLogFirst:      first,
		AccessLogThereafter: then,
	})
	if err != nil {
		b.Fatal(err)
	}
	s.App().Get("/peers/:id", handler)
	fullLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go s.Serve(fullLn)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	}()

	type target struct {
		client *fasthttp.HostClient
		req    *fasthttp.Request
		total  time.Duration
	}
	mk := func(addr string) *target {
		req := fasthttp.AcquireRequest()
		req.SetRequestURI("http://" + addr + "/peers/42")
		return &target{client: &fasthttp.HostClient{Addr: addr, MaxConns: 1}, req: req}
	}
	targets := [2]*target{mk(bareLn.Addr().String()), mk(fullLn.Addr().String())}
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	do := func(t *target) {
		start := time.Now()
		if err := t.client.Do(t.req, resp); err != nil {
			b.Fatal(err)
		}
		t.total += time.Since(start)
		if resp.StatusCode() != 200 || string(resp.Body()) != "peer 42" {
			b.Fatalf("%d %q", resp.StatusCode(), resp.Body())
		}
	}
	for i := 0; i < 2000; i++ { // warm up connections, pools and metric caches
		do(targets[0])
		do(targets[1])
	}
	targets[0].total, targets[1].total = 0, 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Alternate the order so neither side always runs on a warm cache.
		do(targets[i%2])
		do(targets[1-i%2])
	}
	b.StopTimer()
	bareNs := float64(targets[0].total.Nanoseconds()) / float64(b.N)
	fullNs := float64(targets[1].total.Nanoseconds()) / float64(b.N)
	b.ReportMetric(bareNs, "bare-ns/req")
	b.ReportMetric(fullNs, "full-ns/req")
	b.ReportMetric(fullNs/bareNs, "full/bare")
}

// BenchmarkHandlerInProcess measures the server-side CPU cost alone: the
// request goes straight into each app's fasthttp handler, without a
// network. bare and full are sub-benchmarks; compare their ns/op.
func BenchmarkHandlerInProcess(b *testing.B) {
	handler := func(c *fiber.Ctx) error { return c.SendString("peer " + c.Params("id")) }
	bare := fiber.New(fiber.Config{DisableStartupMessage: true})
	bare.Get("/peers/:id", handler)
	s, err := New(Options{
		Logger:              slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Metrics:             metrics.NewSet(),
		AccessLogFirst:      100,
		AccessLogThereafter: 100,
	})
	if err != nil {
		b.Fatal(err)
	}
	s.App().Get("/peers/:id", handler)
	for _, tc := range []struct {
		name string
		app  *fiber.App
	}{{"bare", bare}, {"full", s.App()}} {
		b.Run(tc.name, func(b *testing.B) {
			h := tc.app.Handler() // builds the route tree
			var ctx fasthttp.RequestCtx
			ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ctx.Request.Reset()
				ctx.Response.Reset()
				ctx.Request.SetRequestURI("/peers/42")
				h(&ctx)
				if ctx.Response.StatusCode() != 200 {
					b.Fatal(ctx.Response.StatusCode())
				}
			}
		})
	}
}
