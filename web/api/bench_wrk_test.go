package api

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/usipipo/usipipo/internal/benchproc"
)

// BenchmarkAPIWrk is the check with a load generator we did not
// write: wrk (Debian package wrk), over loopback, against servers in
// processes of their own (this test binary run again), so that each one's
// CPU time is read from the kernel apart from wrk's:
//
//   - get-user-cached: the API (the set-up of BenchmarkAPILoad: a store
//     with benchUsers users, an API key, the full middleware) answering an
//     authenticated cached GET /api/v1/users/{id}, and a bare fiber handler
//     as the ceiling, taking turns: b.N rounds of one wrk run each, the
//     order flipping every round, so load from elsewhere on the machine
//     falls on both alike;
//   - vpn-create: the seed's POST /api/v1/vpn/create, each a durable key
//     creation spread over the users, b.N wrk runs.
//
// Each contender reports req/s (all rounds' requests over all rounds'
// time), p99-ms (the median of the rounds' 99th percentiles, as wrk
// --latency prints them) and cpu-µs/req (the server process's CPU time).
// USIPIPO_BENCH_WRK_DURATION (default 2s) is one run's length,
// USIPIPO_BENCH_CONC (default 32) wrk's connections and
// USIPIPO_BENCH_WRK_THREADS (default 1) its threads.
//
//	go test -run '^$' -bench APIWrk -benchtime 5x ./web/api
func BenchmarkAPIWrk(b *testing.B) {
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		b.Skip("wrk is not installed (Debian package wrk): the out-of-process load benchmark needs it")
	}
	w := wrkRunner{bin: wrk, conc: 32, threads: 1, dur: 2 * time.Second}
	if v, err := strconv.Atoi(os.Getenv("USIPIPO_BENCH_CONC")); err == nil && v > 0 {
		w.conc = v
	}
	if v, err := strconv.Atoi(os.Getenv("USIPIPO_BENCH_WRK_THREADS")); err == nil && v > 0 {
		w.threads = v
	}
	if v, err := time.ParseDuration(os.Getenv("USIPIPO_BENCH_WRK_DURATION")); err == nil && v >= time.Second {
		w.dur = v
	}
	api := startAPIServerProcess(b, "api")
	bare := startAPIServerProcess(b, "bare "+api.users[0])
	auth := "Authorization: Bearer " + api.token

	b.Run("get-user-cached", func(b *testing.B) {
		cs := []*wrkContender{
			{name: "api", pid: api.pid, args: []string{"-H", auth, "http://" + api.addr + "/api/v1/users/" + api.users[0]}},
			{name: "bare", pid: bare.pid, args: []string{"-H", auth, "http://" + bare.addr + "/users/" + bare.users[0]}},
		}
		w.turns(b, cs)
	})
	b.Run("vpn-create", func(b *testing.B) {
		script := filepath.Join(b.TempDir(), "vpn-create.lua")
		if err := os.WriteFile(script, vpnCreateScript(api.users), 0o600); err != nil {
			b.Fatal(err)
		}
		w.turns(b, []*wrkContender{{name: "api", pid: api.pid,
			args: []string{"-H", auth, "-s", script, "http://" + api.addr + "/api/v1/vpn/create"}}})
	})
}

// vpnCreateScript is a wrk script posting the seed's vpn/create body for
// each user in turn.
func vpnCreateScript(users []string) []byte {
	var s strings.Builder
	s.WriteString("wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nlocal bodies = {\n")
	for _, u := range users {
		fmt.Fprintf(&s, "  '{\"user_id\":%q,\"vpn_type\":\"outline\",\"is_trial\":false}',\n", u)
	}
	s.WriteString("}\nlocal i = 0\nrequest = function()\n  i = i % #bodies + 1\n  return wrk.format(nil, nil, nil, bodies[i])\nend\n")
	return []byte(s.String())
}

// wrkRunner runs wrk with fixed settings.
type wrkRunner struct {
	bin           string
	conc, threads int
	dur           time.Duration
}

// wrkContender is one server under a wrk benchmark and its sums.
type wrkContender struct {
	name string
	pid  int
	args []string // wrk's arguments after the common ones: headers, script, URL

	requests int
	wall     time.Duration
	cpu      time.Duration
	p99s     []time.Duration
}

// maxWrkRounds caps the rounds: b.N is a count of wrk runs of w.dur each,
// and a -benchtime meant for the in-process benchmarks (20000x) must not
// mean hours.
const maxWrkRounds = 20

// turns gives each contender b.N wrk runs (at most maxWrkRounds), the
// order flipping every round, and reports each one's figures.
func (w wrkRunner) turns(b *testing.B, cs []*wrkContender) {
	rounds := b.N
	if rounds > maxWrkRounds {
		b.Logf("%d rounds asked, %d run", rounds, maxWrkRounds)
		rounds = maxWrkRounds
	}
	for r := range rounds {
		for i := range cs {
			c := cs[i]
			if r%2 == 1 {
				c = cs[len(cs)-1-i]
			}
			cpu0, err := benchproc.CPU(c.pid)
			if err != nil {
				b.Fatal(err)
			}
			res, err := w.run(c.args)
			if err != nil {
				b.Fatalf("%s: %v", c.name, err)
			}
			cpu1, err := benchproc.CPU(c.pid)
			if err != nil {
				b.Fatal(err)
			}
			c.cpu += cpu1 - cpu0
			c.requests += res.requests
			c.wall += res.elapsed
			c.p99s = append(c.p99s, res.p99)
		}
	}
	for _, c := range cs {
		if c.requests == 0 {
			b.Fatalf("%s: wrk completed no request", c.name)
		}
		slices.Sort(c.p99s)
		b.ReportMetric(float64(c.requests)/c.wall.Seconds(), c.name+"-req/s")
		b.ReportMetric(float64(c.p99s[len(c.p99s)/2].Microseconds())/1000, c.name+"-p99-ms")
		b.ReportMetric(float64(c.cpu.Nanoseconds())/1000/float64(c.requests), c.name+"-cpu-µs/req")
	}
}

// wrkResult is what one wrk run printed.
type wrkResult struct {
	requests int
	elapsed  time.Duration
	p99      time.Duration
}

// run runs wrk once and parses its report; a run with failed requests
// (not 2xx/3xx, or socket errors) is an error.
func (w wrkRunner) run(args []string) (wrkResult, error) {
	cmd := exec.Command(w.bin, append([]string{"--latency", "-t", strconv.Itoa(w.threads), "-c", strconv.Itoa(w.conc),
		"-d", strconv.Itoa(int(w.dur.Seconds())) + "s", "--timeout", "10s"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %v: %s", err, out)
	}
	return parseWrk(string(out))
}

var (
	wrkTotal  = regexp.MustCompile(`(?m)^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),`)
	wrkP99    = regexp.MustCompile(`(?m)^\s*99(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$`)
	wrkNon2xx = regexp.MustCompile(`(?m)^\s*Non-2xx or 3xx responses: (\d+)`)
	wrkSocket = regexp.MustCompile(`(?m)^\s*Socket errors: (.*)$`)
)

// parseWrk reads wrk 4's report (with --latency).
func parseWrk(out string) (wrkResult, error) {
	if m := wrkNon2xx.FindStringSubmatch(out); m != nil {
		return wrkResult{}, fmt.Errorf("%s responses were not 2xx/3xx:\n%s", m[1], out)
	}
	if m := wrkSocket.FindStringSubmatch(out); m != nil {
		return wrkResult{}, fmt.Errorf("socket errors (%s):\n%s", m[1], out)
	}
	total, p99 := wrkTotal.FindStringSubmatch(out), wrkP99.FindStringSubmatch(out)
	if total == nil || p99 == nil {
		return wrkResult{}, fmt.Errorf("no request count or 99th percentile in wrk's report:\n%s", out)
	}
	n, err := strconv.Atoi(total[1])
	if err != nil {
		return wrkResult{}, err
	}
	elapsed, err := wrkDuration(total[2], total[3])
	if err != nil {
		return wrkResult{}, err
	}
	lat, err := wrkDuration(p99[1], p99[2])
	if err != nil {
		return wrkResult{}, err
	}
	return wrkResult{requests: n, elapsed: elapsed, p99: lat}, nil
}

// wrkDuration reads wrk's number-and-unit times ("2.00s", "812.00us",
// "1.00m").
func wrkDuration(num, unit string) (time.Duration, error) {
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("wrk time %q: %w", num+unit, err)
	}
	scale := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second,
		"m": time.Minute, "h": time.Hour}[unit]
	return time.Duration(v * float64(scale)), nil
}

// apiBenchServerEnv selects the server process of BenchmarkAPIWrk: "api",
// or "bare USER-ID" (the user the bare handler's fixed body names).
const apiBenchServerEnv = "USIPIPO_API_BENCH_SERVER"

// benchProcess is a server process of BenchmarkAPIWrk: where it listens,
// which process it is, the API key, and the users.
type benchProcess struct {
	addr, token string
	pid         int
	users       []string
}

// startAPIServerProcess runs this test binary as the server kind until the
// benchmark ends.
func startAPIServerProcess(b *testing.B, kind string) benchProcess {
	proc := benchproc.Start(b, os.Args[0], []string{"-test.run=^TestAPIBenchServerProcess$", "-test.bench=^$"}, apiBenchServerEnv+"="+kind)
	kind, _, _ = strings.Cut(kind, " ")
	p := benchProcess{pid: proc.PID}
	br := proc.Out
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			b.Fatalf("%s server process: %q %v", kind, line, err)
		}
		k, v, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch k {
		case "addr":
			p.addr = v
		case "token":
			p.token = v
		case "users":
			p.users = strings.Split(v, ",")
		}
		if k == "ready" {
			break
		}
	}
	go io.Copy(io.Discard, br)
	if p.addr == "" || len(p.users) == 0 {
		b.Fatalf("%s server process said %+v", kind, p)
	}
	return p
}

// TestAPIBenchServerProcess is the server process of BenchmarkAPIWrk; it
// does nothing in a normal test run.
func TestAPIBenchServerProcess(t *testing.T) {
	kind, arg, _ := strings.Cut(os.Getenv(apiBenchServerEnv), " ")
	switch kind {
	case "":
		t.Skip("server process of BenchmarkAPIWrk only")
	case "api":
		bs := newBenchService(t)
		srv := benchAPI(t, bs.svc)
		addr := serveBench(t, srv.Serve, func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(ctx)
		})
		fmt.Printf("addr %s\ntoken %s\nusers %s\n", addr, bs.token, strings.Join(bs.userIDs, ","))
	case "bare":
		fa := bareApp(arg)
		addr := serveBench(t, fa.Listener, func() { fa.ShutdownWithTimeout(5 * time.Second) })
		fmt.Printf("addr %s\nusers %s\n", addr, arg)
	default:
		t.Fatalf("unknown server %q", kind)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin) // until the benchmark closes our stdin
}

// wrk 4's report, as BenchmarkAPIWrk reads it.
func TestParseWrk(t *testing.T) {
	const report = `Running 2s test @ http://127.0.0.1:40000/users/x
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.10ms  503.22us  12.04ms   87.66%
    Req/Sec    29.51k     1.43k   31.60k    75.00%
  Latency Distribution
     50%    1.02ms
     75%    1.28ms
     90%    1.58ms
     99%  912.00us
  58729 requests in 2.00s, 9.02MB read
Requests/sec:  29330.59
Transfer/sec:      4.51MB
`
	got, err := parseWrk(report)
	if err != nil || got != (wrkResult{requests: 58729, elapsed: 2 * time.Second, p99: 912 * time.Microsecond}) {
		t.Fatalf("%+v %v", got, err)
	}
	slow := strings.Replace(report, "99%  912.00us", "99%    1.20s", 1)
	if got, err := parseWrk(slow); err != nil || got.p99 != 1200*time.Millisecond {
		t.Fatalf("seconds: %+v %v", got, err)
	}
	for name, bad := range map[string]string{
		"non-2xx":       strings.Replace(report, "Requests/sec", "  Non-2xx or 3xx responses: 7\nRequests/sec", 1),
		"socket errors": strings.Replace(report, "Requests/sec", "  Socket errors: connect 0, read 2, write 0, timeout 0\nRequests/sec", 1),
		"no latency":    strings.Replace(report, "     99%  912.00us\n", "", 1),
		"no total":      strings.Replace(report, "  58729 requests in 2.00s, 9.02MB read\n", "", 1),
	} {
		if _, err := parseWrk(bad); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
