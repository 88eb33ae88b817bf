package ops

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const monitoringDir = "scripts/monitoring"

// exporterPrefixes are the families the node exports; `up` is made by
// Prometheus itself for every scrape.
var exporterPrefixes = []string{"usipipo_", "process_", "go_"}

func TestAlertRules(t *testing.T) {
	need(t, "promtool", "prometheus")
	dir := filepath.Join(repoRoot(t), monitoringDir)
	run(t, dir, nil, "promtool", "check", "rules", "alerts.yml")
	out := run(t, dir, nil, "promtool", "test", "rules", "alerts_test.yml")
	if !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool test rules:\n%s", out)
	}
	// Every alert has a test that fires it.
	rules := readFile(t, filepath.Join(dir, "alerts.yml"))
	tests := string(readFile(t, filepath.Join(dir, "alerts_test.yml")))
	for _, m := range regexp.MustCompile(`(?m)^\s*- alert: (\S+)`).FindAllStringSubmatch(string(rules), -1) {
		if !strings.Contains(tests, "alertname: "+m[1]+"\n        exp_alerts:") {
			t.Errorf("alert %s has no test that fires it", m[1])
		}
	}
}

// dashboardExprs returns every PromQL expression of the dashboard: panel
// targets and the metric of each label_values() variable.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	var d struct {
		Panels []struct {
			ID      int
			Type    string
			Title   string
			Targets []struct{ Expr string }
		}
		Templating struct {
			List []struct {
				Type  string
				Query json.RawMessage
			}
		}
	}
	if err := json.Unmarshal(readFile(t, filepath.Join(repoRoot(t), monitoringDir, "dashboard.json")), &d); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	var exprs []string
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	labelValues := regexp.MustCompile(`^label_values\((.*),\s*\w+\)$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct{ Query string }
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Fatalf("variable query: %v", err)
		}
		m := labelValues.FindStringSubmatch(q.Query)
		if m == nil {
			t.Fatalf("variable query %q is not label_values(selector, label)", q.Query)
		}
		exprs = append(exprs, m[1])
	}
	return exprs
}

// TestDashboardQueriesParse has promtool parse every dashboard query, as
// the recording rules of a throwaway rules file.
func TestDashboardQueriesParse(t *testing.T) {
	need(t, "promtool", "prometheus")
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, e := range dashboardExprs(t) {
		q, _ := json.Marshal(grafanaVars.Replace(e))
		fmt.Fprintf(&b, "      - record: dashboard:query%d\n        expr: %s\n", i, q)
	}
	p := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "", nil, "promtool", "check", "rules", p)
}

// usedMetrics is every metric name the dashboard and the alert rules use.
func usedMetrics(t *testing.T) map[string][]string {
	t.Helper()
	used := map[string][]string{}
	for _, e := range dashboardExprs(t) {
		for _, n := range metricNames(e) {
			used[n] = append(used[n], "dashboard")
		}
	}
	for _, e := range ruleExprs(string(readFile(t, filepath.Join(repoRoot(t), monitoringDir, "alerts.yml")))) {
		for _, n := range metricNames(e) {
			used[n] = append(used[n], "alerts")
		}
	}
	if len(used) < 10 {
		t.Fatalf("only %d metric names found: the extraction is broken", len(used))
	}
	return used
}

// TestMonitoringMatchesLiveNode starts a node from the release binary,
// exercises its API, admin socket, store and cache, scrapes /metrics and
// checks the scrape with promtool and against every metric name the
// dashboard and the rules use.
func TestMonitoringMatchesLiveNode(t *testing.T) {
	promtool := need(t, "promtool", "prometheus")
	bin := filepath.Join(release(t), "usipipo-linux-"+runtime.GOARCH)
	scrape := liveScrape(t, bin)
	checkHealthSeries(t, scrape)

	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(scrape)
	out, err := cmd.CombinedOutput()
	var problems []string
	noHelp := 0
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		switch {
		case l == "":
		case strings.HasSuffix(l, " no help text"):
			// The metrics library writes no # HELP lines; nothing else may fail.
			noHelp++
		default:
			problems = append(problems, l)
		}
	}
	if len(problems) > 0 || (err != nil && noHelp == 0) {
		t.Errorf("promtool check metrics (%v):\n%s", err, strings.Join(problems, "\n"))
	}
	t.Logf("promtool check metrics: %d families without help text, no other problem", noHelp)

	exported := map[string]bool{}
	for _, l := range strings.Split(scrape, "\n") {
		if l == "" || l[0] == '#' {
			continue
		}
		name := l[:strings.IndexAny(l+" ", "{ ")]
		exported[name] = true
	}
	used := usedMetrics(t)
	names := make([]string, 0, len(used))
	for n := range used {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if n == "up" {
			continue // Prometheus' own
		}
		if !exported[n] {
			t.Errorf("%s (used by %s) is not in the node's /metrics", n, strings.Join(dedupe(used[n]), ", "))
		}
		ok := false
		for _, p := range exporterPrefixes {
			ok = ok || strings.HasPrefix(n, p)
		}
		if !ok {
			t.Errorf("%s is not a metric of the node", n)
		}
	}
	t.Logf("%d metric names used: %s", len(names), strings.Join(names, " "))

	// A ready node has installed its desired set on every data plane, and
	// the bot's latency series exist (at zero) without a bot token, with
	// the 3 s target as a bucket bound for the UsipipoBotSlow alert.
	for _, want := range []string{
		`usipipo_plane_up{plane="wireguard"} 1`, `usipipo_plane_up{plane="outline"} 1`, `usipipo_plane_up{plane="mtproto"} 1`,
		`usipipo_bot_update_duration_seconds_bucket{kind="command",le="3"} 0`,
		// Payment failures exist at zero from the first scrape, every pair.
		`usipipo_payment_failures_total{provider="stars",reason="rejected"} 0`,
		`usipipo_payment_failures_total{provider="qvapay",reason="provider_error"} 0`,
	} {
		if !strings.Contains(scrape, "\n"+want+"\n") {
			t.Errorf("the scrape lacks %q", want)
		}
	}
}

// checkHealthSeries checks the disk and certificate series hold real
// values: a filesystem with free space, and the Outline Manager API
// certificate expiring in the future (it is made for years).
func checkHealthSeries(t *testing.T, scrape string) {
	t.Helper()
	value := func(series string) float64 {
		for _, l := range strings.Split(scrape, "\n") {
			if v, ok := strings.CutPrefix(l, series+" "); ok {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					t.Fatalf("%s: %v", l, err)
				}
				return f
			}
		}
		t.Errorf("the scrape lacks %s", series)
		return 0
	}
	free, size := value("usipipo_data_fs_free_bytes"), value("usipipo_data_fs_size_bytes")
	if size <= 0 || free <= 0 || free > size {
		t.Errorf("data filesystem: %v free of %v bytes", free, size)
	}
	exp := value(`usipipo_tls_cert_expiry_timestamp_seconds{listener="outline_api"}`)
	if left := time.Until(time.Unix(int64(exp), 0)); left < 300*24*time.Hour {
		t.Errorf("outline_api certificate expires in %v", left)
	}
	if strings.Contains(scrape, `listener="http"`) || strings.Contains(scrape, `listener="public"`) {
		t.Error("an expiry series for a TLS listener that is off")
	}
}

func dedupe(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// liveScrape runs a node on 127.0.0.1 port 0, gives every part a little
// work, and returns one scrape of /metrics.
func liveScrape(t *testing.T, bin string) string {
	t.Helper()
	data := filepath.Join(t.TempDir(), "data")
	cmd := exec.Command(bin, "serve", "--data", data, "--http", "127.0.0.1:0", "--wg-listen", "127.0.0.1:0",
		"--wg-mode", "netstack", "--ss-listen", "127.0.0.1:0", "--mtproto-listen", "127.0.0.1:0", "--public-host", "127.0.0.1",
		// A TLS listener, so the certificate-expiry series the rules use is
		// in the scrape (it exists only for listeners that are on).
		"--outline-api", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "USIPIPO_BACKUP_PASSPHRASE=ops test passphrase")
	logs, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Error("node did not stop on SIGTERM within 30 s")
		}
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(logs)
		for sc.Scan() {
			var l struct {
				Action  string
				Details struct{ HTTP string }
			}
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Action == "api_ready" {
				addr <- l.Details.HTTP
			}
		}
		io.Copy(io.Discard, logs)
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case <-exited:
		t.Fatal("node exited before api_ready")
	case <-time.After(60 * time.Second):
		t.Fatal("no api_ready within 60 s")
	}
	get := func(path string, want int) string {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("GET %s: %d, want %d: %s", path, resp.StatusCode, want, b)
		}
		return string(b)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("node not ready within 30 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	get("/healthz", 200)
	get("/no-such-page", 404)
	// The store and the cache: a user, a key, and its config twice.
	env := []string{"USIPIPO_DATA=" + data}
	run(t, "", env, bin, "user", "add", "--telegram-id", "4242")
	var added struct{ Key struct{ ID string } }
	if err := json.Unmarshal([]byte(run(t, "", env, bin, "key", "add", "--user", "4242", "--type", "outline", "--json")), &added); err != nil || added.Key.ID == "" {
		t.Fatalf("key add: %v", err)
	}
	for range 2 {
		run(t, "", env, bin, "key", "config", added.Key.ID)
	}
	return get("/metrics", 200)
}
