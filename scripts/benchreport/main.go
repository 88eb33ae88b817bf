// Command benchreport turns `go test -bench` output into BENCH.md: every
// figure of every benchmark, and the ratios against the baselines measured
// in the same run that the issues' targets are stated in.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// result is one benchmark line: its name (without the -GOMAXPROCS suffix)
// and its figures by unit.
type result struct {
	pkg, name string
	figures   map[string]float64
	units     []string
}

var line = regexp.MustCompile(`^(Benchmark\S+?)(-\d+)?\s+(\d+)\s+(.*)$`)

func parse(r io.Reader) ([]result, string) {
	var out []result
	pkg, cpu := "", ""
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		t := sc.Text()
		switch {
		case strings.HasPrefix(t, "pkg: "):
			pkg = strings.TrimPrefix(t, "pkg: ")
		case strings.HasPrefix(t, "cpu: "):
			cpu = strings.TrimSpace(strings.TrimPrefix(t, "cpu: "))
		}
		m := line.FindStringSubmatch(t)
		if m == nil {
			continue
		}
		res := result{pkg: pkg, name: m[1], figures: map[string]float64{}}
		f := strings.Fields(m[4])
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			res.figures[f[i+1]] = v
			res.units = append(res.units, f[i+1])
		}
		out = append(out, res)
	}
	return out, cpu
}

// ratio is one target line: a figure against its same-run baseline.
type ratio struct {
	what           string
	bench, unit    string
	base, baseUnit string
	target         string
	higherIsBetter bool
}

var ratios = []ratio{
	{"durable commands/s, 1 writer, vs one Put per Update", "BenchmarkDo/writers=1", "cmds/s", "BenchmarkBoltUpdate/writers=1", "cmds/s", "", true},
	{"durable commands/s, 16 writers, vs db.Batch", "BenchmarkDo/writers=16", "cmds/s", "BenchmarkBoltBatch/writers=16", "cmds/s", "", true},
	{"durable commands/s, 64 writers, vs db.Batch", "BenchmarkDo/writers=64", "cmds/s", "BenchmarkBoltBatch/writers=64", "cmds/s", ">= 10,000/s", true},
	{"durable commands/s, 256 writers, vs one Put per Update (16)", "BenchmarkDo/writers=256", "cmds/s", "BenchmarkBoltUpdate/writers=16", "cmds/s", "", true},
	{"client config, cached vs rendered", "BenchmarkKeyConfig/cached=true", "ns/op", "BenchmarkKeyConfig/cached=false", "ns/op", "", false},
	{"QR code PNG, cached vs rendered", "BenchmarkKeyQR/cached=true", "ns/op", "BenchmarkKeyQR/cached=false", "ns/op", "", false},
	{"full middleware stack vs bare fiber handler, loopback, sampled log", "BenchmarkMiddlewareOverhead/sampled", "full-ns/req", "BenchmarkMiddlewareOverhead/sampled", "bare-ns/req", "", false},
	{"JSON log line (seed fields) vs slog.JSONHandler", "BenchmarkHandler/seed_line/usipipo", "ns/op", "BenchmarkHandler/seed_line/slog.JSON", "ns/op", "", false},
	{"egress-checked dial vs plain net.Dialer, loopback", "BenchmarkDial/egress", "ns/op", "BenchmarkDial/plain", "ns/op", "", false},
	{"API: cached GET /api/v1/users/{id} vs bare fiber handler", "BenchmarkAPILoad/get-user-cached", "req/s", "BenchmarkAPILoad/bare", "req/s", ">= 0.5× and >= 20,000 req/s, p99 <= 10 ms", true},
	{"API: durable POST /api/v1/vpn/create vs bare fiber handler", "BenchmarkAPILoad/vpn-create", "req/s", "BenchmarkAPILoad/bare", "req/s", ">= 1,000 req/s", true},
	{"API: vpn/create with an Idempotency-Key (response sealed, stored durably) vs without", "BenchmarkAPILoad/vpn-create-idempotent", "req/s", "BenchmarkAPILoad/vpn-create", "req/s", "", true},
	{"API, wrk out of process: cached GET /api/v1/users/{id} vs bare fiber handler, taking turns", "BenchmarkAPIWrk/get-user-cached", "api-req/s", "BenchmarkAPIWrk/get-user-cached", "bare-req/s", ">= 0.5× and >= 20,000 req/s, p99 <= 10 ms", true},
	{"API, wrk out of process: server CPU per cached GET vs bare fiber handler, same turns", "BenchmarkAPIWrk/get-user-cached", "api-cpu-µs/req", "BenchmarkAPIWrk/get-user-cached", "bare-cpu-µs/req", "", false},
	{"Outline: one wrong-key trial vs x/crypto/hkdf path", "BenchmarkTrial/chacha20-ietf-poly1305/deriver", "ns/op", "BenchmarkTrial/chacha20-ietf-poly1305/baseline-xcrypto-hkdf", "ns/op", "", false},
	{"Outline: ss-local throughput through usipipo vs ss-server, taking turns", "BenchmarkLibevLocalThroughput", "usipipo-Gbit/s", "BenchmarkLibevLocalThroughput", "ss-server-Gbit/s", ">= 1×", true},
	{"Outline: server CPU per 32 KiB (ss-local path), usipipo vs ss-server", "BenchmarkLibevLocalThroughput", "usipipo-cpu-µs/32KiB", "BenchmarkLibevLocalThroughput", "ss-server-cpu-µs/32KiB", "", false},
	{"Outline: ss-local connections/s through usipipo vs ss-server, taking turns", "BenchmarkLibevLocalConnections", "usipipo-conns/s", "BenchmarkLibevLocalConnections", "ss-server-conns/s", ">= 1.5×", true},
	{"Outline: server CPU per connection (ss-local path), usipipo vs ss-server", "BenchmarkLibevLocalConnections", "usipipo-cpu-µs/conn", "BenchmarkLibevLocalConnections", "ss-server-cpu-µs/conn", "<= 1× (1.5× the connections/s is out of reach here: see the ceiling rows)", false},
	{"Outline: ceiling (SOCKS client → sink, no ss-local, no server) vs ss-server through ss-local, connections/s, same turns", "BenchmarkLibevLocalConnections", "ceiling-conns/s", "BenchmarkLibevLocalConnections", "ss-server-conns/s", "", true},
	{"Outline: Go client connections/s through usipipo vs ss-server, taking turns", "BenchmarkConnections", "usipipo-conns/s", "BenchmarkConnections", "ss-server-conns/s", "", true},
	{"Outline: server CPU per connection (Go client path), usipipo vs ss-server", "BenchmarkConnections", "usipipo-cpu-µs/conn", "BenchmarkConnections", "ss-server-cpu-µs/conn", "<= 1× (1.5× the connections/s is out of reach here: see the ceiling rows)", false},
	{"Outline: ceiling (Go client → sink, no server at all) vs ss-server, connections/s, same turns", "BenchmarkConnections", "ceiling-conns/s", "BenchmarkConnections", "ss-server-conns/s", "", true},
	{"Outline: server CPU per connection (Go client path), usipipo vs a plain Go relay on the same sockets, no Shadowsocks (the design's floor)", "BenchmarkConnections", "usipipo-cpu-µs/conn", "BenchmarkConnections", "relay-cpu-µs/conn", "", false},
	{"Outline: server CPU per connection, that plain Go relay vs ss-server, same turns", "BenchmarkConnections", "relay-cpu-µs/conn", "BenchmarkConnections", "ss-server-cpu-µs/conn", "", false},
	{"Outline: Go client throughput through usipipo vs ss-server, taking turns", "BenchmarkThroughput", "usipipo-Gbit/s", "BenchmarkThroughput", "ss-server-Gbit/s", "", true},
	{"broadcast planner: filter + receipt lookup per recipient vs paging the users", "BenchmarkBroadcastPlanner/plan", "ns/recipient", "BenchmarkBroadcastPlanner/baseline", "ns/recipient", "", false},
	{"bot: button press end to end (intake + bot) vs an echo handler on the same intake, p50", "BenchmarkBotUpdates/inflight=1", "p50-ms", "BenchmarkBotUpdates/baseline-echo/inflight=1", "p50-ms", "", false},
	{"bot: button press end to end, handled while its update is fsynced vs after (persist-first), p50", "BenchmarkBotUpdates/inflight=1", "p50-ms", "BenchmarkBotUpdates/persist-first/inflight=1", "p50-ms", "< 1×", false},
	{"bot: button presses/s, 1 in flight, handled while fsynced vs after (persist-first)", "BenchmarkBotUpdates/inflight=1", "updates/s", "BenchmarkBotUpdates/persist-first/inflight=1", "updates/s", "", true},
	{"payments: update → grant → receipt, 1 in flight, handled while fsynced vs after (persist-first), p99", "BenchmarkPaymentUpdates/inflight=1", "p99-ms", "BenchmarkPaymentUpdates/persist-first/inflight=1", "p99-ms", "", false},
	{"MTProto: dd relay vs a relay doing only the AES-CTR work", "BenchmarkRelay/mtproto-dd", "ns/op", "BenchmarkRelay/aes-ctr", "ns/op", "<= 1.11× (>= 90% of its rate)", false},
	{"MTProto: dd relay vs a plain io.Copy relay", "BenchmarkRelay/mtproto-dd", "ns/op", "BenchmarkRelay/plain", "ns/op", "", false},
	{"MTProto: DC→client, dd relay vs a relay doing only the AES-CTR work", "BenchmarkRelayDown/mtproto-dd", "ns/op", "BenchmarkRelayDown/aes-ctr", "ns/op", "<= 1.11× (>= 90% of its rate)", false},
	{"MTProto: DC→client, dd fast mode vs a relay doing only the AES-CTR work", "BenchmarkRelayDown/mtproto-dd-fast", "ns/op", "BenchmarkRelayDown/aes-ctr", "ns/op", "< 1× (faster)", false},
	{"MTProto: DC→client, dd fast mode vs a plain io.Copy relay", "BenchmarkRelayDown/mtproto-dd-fast", "ns/op", "BenchmarkRelayDown/plain", "ns/op", "", false},
	{"MTProto: DC→client, dd fast mode vs normal", "BenchmarkRelayDown/mtproto-dd-fast", "ns/op", "BenchmarkRelayDown/mtproto-dd", "ns/op", "", false},
	{"MTProto: DC→client, ee fast mode vs normal", "BenchmarkRelayDown/mtproto-ee-fast", "ns/op", "BenchmarkRelayDown/mtproto-ee", "ns/op", "", false},
	{"MTProto: DC→client CPU (source+relay+client), dd normal vs AES-CTR-only relay", "BenchmarkRelayDown/mtproto-dd", "cpu-ns/op", "BenchmarkRelayDown/aes-ctr", "cpu-ns/op", "", false},
	{"MTProto: DC→client CPU (source+relay+client), dd fast vs AES-CTR-only relay", "BenchmarkRelayDown/mtproto-dd-fast", "cpu-ns/op", "BenchmarkRelayDown/aes-ctr", "cpu-ns/op", "", false},
	{"MTProto: DC→client CPU (source+relay+client), dd fast vs plain relay", "BenchmarkRelayDown/mtproto-dd-fast", "cpu-ns/op", "BenchmarkRelayDown/plain", "cpu-ns/op", "", false},
	{"MTProto: DC→client CPU (source+relay+client), ee fast vs ee normal", "BenchmarkRelayDown/mtproto-ee-fast", "cpu-ns/op", "BenchmarkRelayDown/mtproto-ee", "cpu-ns/op", "", false},
	{"MTProto: connections/s, dd vs a plain TCP relay", "BenchmarkConnect/mtproto-dd", "conns/s", "BenchmarkConnect/plain", "conns/s", "", true},
	{"MTProto: connections/s, ee (FakeTLS) vs a plain TCP relay", "BenchmarkConnect/mtproto-ee", "conns/s", "BenchmarkConnect/plain", "conns/s", "", true},
	{"WireGuard netstack: bulk TCP to a Go tun/netstack client (the client bounds it) vs stock tun/netstack server", "BenchmarkTCPDownload/usipipo", "Gbit/s", "BenchmarkTCPDownload/stock", "Gbit/s", "", true},
	{"WireGuard tun: bulk TCP through the node vs stock wireguard-go TUN exit, taking turns", "BenchmarkTunMode", "usipipo-Gbit/s", "BenchmarkTunMode", "stock-Gbit/s", ">= 0.9×", true},
	{"WireGuard netstack: bulk TCP to a kernel-TCP client vs stock tun/netstack server, taking turns", "BenchmarkNetstackMode", "usipipo-Gbit/s", "BenchmarkNetstackMode", "stock-Gbit/s", ">= 2.4×, >= 1 Gbit/s", true},
	{"WireGuard netstack: server CPU per MiB vs stock tun/netstack server, same turns", "BenchmarkNetstackMode", "usipipo-server-cpu-µs/MiB", "BenchmarkNetstackMode", "stock-server-cpu-µs/MiB", "", false},
	{"WireGuard netstack: bulk TCP vs the client's ceiling (stock wireguard-go TUN server sending from its own kernel TCP), same turns", "BenchmarkNetstackMode", "usipipo-Gbit/s", "BenchmarkNetstackMode", "tun-Gbit/s", "", true},
	{"WireGuard netstack: client wireguard-go CPU per MiB fed by usipipo vs by the TUN ceiling, same turns", "BenchmarkNetstackMode", "usipipo-client-cpu-µs/MiB", "BenchmarkNetstackMode", "tun-client-cpu-µs/MiB", "", false},
	{"WireGuard netstack: server CPU per MiB vs the TUN ceiling's (wireguard-go + kernel TCP), same turns", "BenchmarkNetstackMode", "usipipo-server-cpu-µs/MiB", "BenchmarkNetstackMode", "tun-server-cpu-µs/MiB", "", false},
}

func main() {
	profile := flag.String("pprof", "", "`go tool pprof -top -cum` listing of the netstack server's profile, for \"where the time goes\"")
	flag.Parse()
	results, cpu := parse(os.Stdin)
	by := map[string]result{}
	for _, r := range results {
		by[r.name] = r
	}
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	fmt.Fprintf(w, "# Benchmarks\n\nWritten by `make bench` on %s (%s, %d cores, %s). Machines are noisy: read the ratios against\nthe baselines measured in the same run, not the absolute figures.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), cpu, runtime.NumCPU(), runtime.Version())
	fmt.Fprintln(w, "## Against same-run baselines\n\n| what | figure | baseline | ratio | target |\n|---|---|---|---|---|")
	for _, q := range ratios {
		a, okA := by[q.bench]
		b, okB := by[q.base]
		if !okA || !okB {
			continue
		}
		va, vb := a.figures[q.unit], b.figures[q.baseUnit]
		if vb == 0 {
			continue
		}
		r, label := va/vb, "× the baseline's rate"
		if !q.higherIsBetter {
			label = "× the baseline's time"
		}
		fmt.Fprintf(w, "| %s | %s %s | %s %s | %s%s | %s |\n", q.what, num(va), q.unit, num(vb), q.baseUnit,
			strconv.FormatFloat(r, 'g', 3, 64), label, q.target)
	}
	fmt.Fprintln(w, "\n## Targets stated as absolute figures\n\n| what | figure | target |\n|---|---|---|")
	abs := []struct{ what, bench, unit, target string }{
		{"usage ingestion, 10,000 credentials every 10 s", "BenchmarkUsageIngest10k", "%core@10s", "< 5% of one core"},
		{"\"API ready\", 100,000 users and 10,000 active keys", "BenchmarkStartup", "api_ready_ms", "< 2,000 ms"},
		{"\"data planes installed\" at that size", "BenchmarkStartup", "planes_installed_ms", ""},
		{"resident memory at that size (anonymous)", "BenchmarkStartup", "anon_MiB", ""},
		{"resident memory at that size (with mapped db pages)", "BenchmarkStartup", "rss_MiB", ""},
		{"desired set of 10,000 keys after a change", "BenchmarkDesiredSet10k/warm=true", "ns/op", ""},
		{"desired set of 10,000 keys at start-up", "BenchmarkDesiredSet10k/warm=false", "ns/op", ""},
		{"API: cached user read, p99", "BenchmarkAPILoad/get-user-cached", "p99-ms", "<= 10 ms"},
		{"API, wrk out of process: cached user read", "BenchmarkAPIWrk/get-user-cached", "api-req/s", ">= 20,000 req/s"},
		{"API, wrk out of process: cached user read, p99 (median of the rounds)", "BenchmarkAPIWrk/get-user-cached", "api-p99-ms", "<= 10 ms"},
		{"API, wrk out of process: durable POST /api/v1/vpn/create", "BenchmarkAPIWrk/vpn-create", "api-req/s", ">= 1,000 req/s"},
		{"API, wrk out of process: durable POST /api/v1/vpn/create, p99 (median of the rounds)", "BenchmarkAPIWrk/vpn-create", "api-p99-ms", ""},
		{"payments: update → grant → receipt, 1 in flight, p99", "BenchmarkPaymentUpdates/inflight=1", "p99-ms", "< 50 ms"},
		{"payments: updates/s at 64 in flight", "BenchmarkPaymentUpdates/inflight=64", "updates/s", "well over the Bot API's ~30/s"},
		{"MTProto: heap+stack per idle connection, 1,000 open", "BenchmarkIdleMemory/conns=1000", "B/idle-conn", "< 20 KiB (20,480 B)"},
		{"MTProto: heap+stack per idle connection, 10,000 open (or as many as the fd limit allows)", "BenchmarkIdleMemory/conns=10000", "B/idle-conn", "< 20 KiB (20,480 B)"},
		{"MTProto: connections open in that run", "BenchmarkIdleMemory/conns=10000", "conns", "10,000"},
		{"Outline: CPU of the Go clients and the sink per connection through ss-server (2 cores at 1.5× ss-server's rate leave a server 2e6/(1.5 × ss-server-conns/s) µs minus this)", "BenchmarkConnections", "ss-server-client-cpu-µs/conn", ""},
		{"Outline: CPU of the Go clients and the sink per connection through usipipo", "BenchmarkConnections", "usipipo-client-cpu-µs/conn", ""},
		{"Outline: ss-server's kernel time per connection (Go client path; no server spends less than the kernel's work for its two TCP connections)", "BenchmarkConnections", "ss-server-sys-µs/conn", ""},
		{"Outline: usipipo's kernel time per connection (Go client path)", "BenchmarkConnections", "usipipo-sys-µs/conn", ""},
		{"bot: button press end to end, 1 in flight, p50", "BenchmarkBotUpdates/inflight=1", "p50-ms", "< 5 ms"},
		{"bot: button press end to end, 1 in flight, p99", "BenchmarkBotUpdates/inflight=1", "p99-ms", "< 50 ms"},
		{"bot: updates/s at 64 in flight", "BenchmarkBotUpdates/inflight=64", "updates/s", "well over the Bot API's ~30/s"},
		{"bot: the bot's own handling of a press, p50", "BenchmarkBotHandler", "p50-ms", ""},
		{"bot: the bot's own handling of a press, p99", "BenchmarkBotHandler", "p99-ms", ""},
	}
	for _, a := range abs {
		if r, ok := by[a.bench]; ok {
			fmt.Fprintf(w, "| %s | %s %s | %s |\n", a.what, num(r.figures[a.unit]), a.unit, a.target)
		}
	}
	if err := writeProfile(w, *profile); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
	fmt.Fprintln(w, "\n## Every figure")
	pkgs := map[string][]result{}
	var names []string
	for _, r := range results {
		if _, ok := pkgs[r.pkg]; !ok {
			names = append(names, r.pkg)
		}
		pkgs[r.pkg] = append(pkgs[r.pkg], r)
	}
	sort.Strings(names)
	for _, p := range names {
		fmt.Fprintf(w, "\n### %s\n\n| benchmark | figures |\n|---|---|\n", p)
		for _, r := range pkgs[p] {
			var fs []string
			for _, u := range r.units {
				fs = append(fs, num(r.figures[u])+" "+u)
			}
			fmt.Fprintf(w, "| %s | %s |\n", strings.TrimPrefix(r.name, "Benchmark"), strings.Join(fs, ", "))
		}
	}
}

func num(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}
