package api

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/cache"
	"github.com/usipipo/usipipo/store/keyring"
	"github.com/usipipo/usipipo/store/model"
	"github.com/usipipo/usipipo/web"
)

// BenchmarkAPILoad is a loopback load generator: conc keep-alive clients
// (USIPIPO_BENCH_CONC, default 32) send b.N requests in all to
//
//   - bare: a bare fiber handler, the ceiling;
//   - get-user-cached: GET /api/v1/users/{id} with an API key, the full
//     middleware (request id, metrics, sampled access log, rate limits,
//     auth) and the user view from the cache;
//   - vpn-create: the seed's POST /api/v1/vpn/create, each a durable
//     (fsynced) key creation, spread over benchUsers users with a plan;
//
// and reports requests per second and the 50th/99th latency percentiles.
//
//	go test -run '^$' -bench APILoad -benchtime 5s ./web/api
func BenchmarkAPILoad(b *testing.B) {
	conc := 32
	if v, err := strconv.Atoi(os.Getenv("USIPIPO_BENCH_CONC")); err == nil && v > 0 {
		conc = v
	}
	env := newBenchEnv(b)
	b.Run("bare", func(b *testing.B) {
		load(b, env.bareAddr, conc, func(int) benchReq { return benchReq{"GET", "/users/" + env.userIDs[0], nil, ""} }, 200)
	})
	b.Run("get-user-cached", func(b *testing.B) {
		load(b, env.apiAddr, conc, func(int) benchReq {
			return benchReq{"GET", "/api/v1/users/" + env.userIDs[0], nil, ""}
		}, 200)
	})
	b.Run("vpn-create", func(b *testing.B) {
		load(b, env.apiAddr, conc, func(i int) benchReq {
			body, _ := json.Marshal(vpnCreateRequest{UserID: env.userIDs[i%len(env.userIDs)], VPNType: "outline"})
			return benchReq{"POST", "/api/v1/vpn/create", body, ""}
		}, 201)
	})
	// The same with an Idempotency-Key each: the response is also sealed
	// and written durably (batched) before it is sent.
	b.Run("vpn-create-idempotent", func(b *testing.B) {
		load(b, env.apiAddr, conc, func(i int) benchReq {
			body, _ := json.Marshal(vpnCreateRequest{UserID: env.userIDs[i%len(env.userIDs)], VPNType: "outline"})
			return benchReq{"POST", "/api/v1/vpn/create", body, "bench-" + strconv.Itoa(i) + "-" + b.Name() + strconv.Itoa(b.N)}
		}, 201)
	})
}

type benchEnv struct {
	*benchService
	bare, api         *fiber.App
	bareAddr, apiAddr string
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	bs := newBenchService(b)
	srv := benchAPI(b, bs.svc)
	env := &benchEnv{benchService: bs, bare: bareApp(bs.userIDs[0]), api: srv.App()}
	env.bareAddr = serveBench(b, env.bare.Listener, func() { env.bare.ShutdownWithTimeout(5 * time.Second) })
	env.apiAddr = serveBench(b, srv.Serve, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	benchToken = env.token
	return env
}

// benchService is the benchmarks' service layer: a store with benchUsers
// users, each with a plan, and an API key with the write scope.
type benchService struct {
	svc     *app.Service
	userIDs []string
	token   string
}

func newBenchService(tb testing.TB) *benchService {
	tb.Helper()
	st, err := store.Open(store.Options{Path: filepath.Join(tb.TempDir(), "usipipo.db")})
	if err != nil {
		tb.Fatal(err)
	}
	c, err := cache.New(cache.Options{MaxBytes: 64 << 20})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close(); c.Close() }) // runs after the servers' shutdown, registered later
	dk, _ := keyring.GenerateKey(rand.Reader)
	svc, err := app.New(app.Options{Store: st, DataKey: dk, Cache: c, Node: "bench",
		Ends: app.Endpoints{PublicHost: "vpn.example.net", SSPort: 8388}})
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	plan, err := svc.PutPlan(ctx, app.ActorCLI, app.PlanSpec{Name: "bench", DurationDays: 365, MaxKeys: 1 << 20,
		Protocols: []model.KeyType{model.Outline, model.WireGuard}})
	if err != nil {
		tb.Fatal(err)
	}
	// Many users, so that no user collects thousands of keys during a run
	// (the store counts a user's credentials on every creation). They are
	// registered concurrently to share commits.
	bs := &benchService{svc: svc, userIDs: make([]string, benchUsers)}
	var wg sync.WaitGroup
	errs := make(chan error, benchUsers)
	sem := make(chan struct{}, 64)
	for i := range benchUsers {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			u, err := svc.RegisterUser(ctx, app.ActorCLI, app.NewUser{TelegramID: int64(1000 + i), Username: "bench", FirstName: "Bench"})
			if err == nil {
				_, err = svc.GrantPlan(ctx, app.ActorCLI, u.ID, plan.ID, 12, 0)
			}
			if err != nil {
				errs <- err
				return
			}
			bs.userIDs[i] = u.ID
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		tb.Fatal(err)
	}
	k, err := svc.CreateAPIKey(ctx, app.ActorCLI, "bench", []model.Scope{model.ScopeWrite}, time.Time{})
	if err != nil {
		tb.Fatal(err)
	}
	bs.token = k.Token
	return bs
}

// bareApp is the ceiling: a bare fiber handler answering GET /users/:id
// with a fixed user-sized JSON body.
func bareApp(userID string) *fiber.App {
	bare := fiber.New(fiber.Config{DisableStartupMessage: true})
	body, _ := json.Marshal(map[string]any{"id": userID, "language": "es", "balance": 0})
	bare.Get("/users/:id", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		return c.Send(body)
	})
	return bare
}

// benchAPI is the API as a node serves it: the web server's middleware
// (request id, metrics, sampled access log) and the API with rate limits
// too high to refuse anything.
func benchAPI(tb testing.TB, svc *app.Service) *web.Server {
	srv, err := web.New(web.Options{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Metrics: metrics.NewSet(),
		AccessLogFirst: 100, AccessLogThereafter: 100})
	if err != nil {
		tb.Fatal(err)
	}
	if err := Mount(srv.App(), Options{Service: svc, KeyRate: 1e6, IPRate: 1e6}); err != nil {
		tb.Fatal(err)
	}
	return srv
}

// serveBench serves on 127.0.0.1:0 until the test ends, then stops.
func serveBench(tb testing.TB, serve func(net.Listener) error, stop func()) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		serve(ln)
	}()
	tb.Cleanup(func() {
		stop()
		<-done
	})
	return ln.Addr().String()
}

// benchUsers is how many users the creations are spread over.
const benchUsers = 1000

var benchToken string

// benchReq is one request of a load run; idemKey, when set, is sent as
// the Idempotency-Key header.
type benchReq struct {
	method, path string
	body         []byte
	idemKey      string
}

// load sends b.N requests from conc workers over keep-alive connections.
func load(b *testing.B, addr string, conc int, mk func(i int) benchReq, want int) {
	client := &fasthttp.HostClient{Addr: addr, MaxConns: conc, ReadTimeout: 10 * time.Second}
	var next atomic.Int64
	lat := make([][]time.Duration, conc)
	var wg sync.WaitGroup
	var failed atomic.Value
	b.ResetTimer()
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				r := mk(i)
				req.Reset()
				req.Header.SetMethod(r.method)
				req.SetRequestURI("http://" + addr + r.path)
				req.Header.Set("Authorization", "Bearer "+benchToken)
				if r.idemKey != "" {
					req.Header.Set("Idempotency-Key", r.idemKey)
				}
				if r.body != nil {
					req.Header.SetContentType("application/json")
					req.SetBody(r.body)
				}
				t0 := time.Now()
				if err := client.Do(req, resp); err != nil {
					failed.Store(err.Error())
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
				if resp.StatusCode() != want {
					failed.Store(strconv.Itoa(resp.StatusCode()) + " " + string(resp.Body()))
					return
				}
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if f := failed.Load(); f != nil {
		b.Fatal(f)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[int(float64(len(all)-1)*p)].Microseconds()) / 1000
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// BenchmarkInProcess measures the server-side CPU cost of one request,
// straight into each app's handler without a network: the bare handler,
// the cached user read with an API key, and the same with a matching
// If-None-Match (304).
func BenchmarkInProcess(b *testing.B) {
	env := newBenchEnv(b)
	for _, tc := range []struct {
		name, path string
		app        *fiber.App
		etag       bool
		want       int
	}{
		{"bare", "/users/" + env.userIDs[0], env.bare, false, 200},
		{"get-user-cached", "/api/v1/users/" + env.userIDs[0], env.api, false, 200},
		{"get-user-304", "/api/v1/users/" + env.userIDs[0], env.api, true, 304},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h := tc.app.Handler()
			var ctx fasthttp.RequestCtx
			ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
			etag := ""
			run := func() {
				ctx.Request.Reset()
				ctx.Response.Reset()
				ctx.Request.SetRequestURI(tc.path)
				ctx.Request.Header.Set("Authorization", "Bearer "+env.token)
				if etag != "" {
					ctx.Request.Header.Set("If-None-Match", etag)
				}
				h(&ctx)
			}
			run()
			if tc.etag {
				etag = string(ctx.Response.Header.Peek("ETag"))
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				run()
				if ctx.Response.StatusCode() != tc.want {
					b.Fatal(ctx.Response.StatusCode(), string(ctx.Response.Body()))
				}
			}
		})
	}
}

// BenchmarkAPIKeyAuth compares authenticating an API token through the
// API's verdict cache (one bbolt get and a byte comparison) with the
// service's full check (the key's record decoded every time), same run.
func BenchmarkAPIKeyAuth(b *testing.B) {
	env := newBenchEnv(b)
	ctx := context.Background()
	a := &api{svc: env.svc, keys: newKeyCache(), now: time.Now}
	for name, auth := range map[string]func() error{
		"service": func() error { _, err := env.svc.AuthenticateAPIKey(ctx, env.token); return err },
		"cached":  func() error { _, err := a.apiKey(ctx, env.token); return err },
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := auth(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
