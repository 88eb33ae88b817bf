package cache

import (
	"bufio"
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"
)

// scrape returns the set's exposition as name{labels} → value.
func scrape(t *testing.T, set *metrics.Set) map[string]float64 {
	t.Helper()
	var buf bytes.Buffer
	set.WritePrometheus(&buf)
	out := map[string]float64{}
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("parsing %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func TestMetricsHitsMissesBytes(t *testing.T) {
	set := metrics.NewSet()
	c := newTestCache(t, Options{MaxBytes: 1 << 20, Metrics: set})
	k := Key{Kind: "key", ID: "k1", Version: 1, Variant: "wg-conf"}
	Get[string](c, k)                          // miss
	Get[string](c, Key{Kind: "user", ID: "u"}) // miss
	Set(c, k, "config", 300, Configs)
	c.Wait()
	Get[string](c, k) // hit
	Get[string](c, k) // hit

	got := scrape(t, set)
	want := map[string]float64{
		`usipipo_cache_hits_total{kind="key"}`:    2,
		`usipipo_cache_misses_total{kind="key"}`:  1,
		`usipipo_cache_hits_total{kind="user"}`:   0,
		`usipipo_cache_misses_total{kind="user"}`: 1,
		`usipipo_cache_evictions_total`:           0,
	}
	for name, w := range want {
		if g, ok := got[name]; !ok || g != w {
			t.Errorf("%s = %v (present %v), want %v", name, g, ok, w)
		}
	}
	if b := got[bytesGaugeName]; b < 300 {
		t.Errorf("%s = %v, want at least the 300 bytes stored", bytesGaugeName, b)
	}
}

func TestMetricsEvictions(t *testing.T) {
	set := metrics.NewSet()
	const maxBytes = 8 << 10
	c := newTestCache(t, Options{MaxBytes: maxBytes, Metrics: set})
	for i := range 64 {
		Set(c, Key{Kind: "key", ID: strconv.Itoa(i)}, "v", 1024, Configs)
		c.Wait()
	}
	got := scrape(t, set)
	if got[evictionsName] == 0 {
		t.Errorf("%s = 0 after storing 64 KiB into %d bytes", evictionsName, maxBytes)
	}
	if b := got[bytesGaugeName]; b <= 0 || b > maxBytes {
		t.Errorf("%s = %v, want in (0, %d]", bytesGaugeName, b, maxBytes)
	}
}

func TestMetricsSetOwnership(t *testing.T) {
	set := metrics.NewSet()
	first, err := New(Options{MaxBytes: 1 << 20, Metrics: set})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if _, err := New(Options{MaxBytes: 1 << 20, Metrics: set}); !errors.Is(err, ErrMetricsInUse) {
		t.Fatalf("second New on one set: err = %v, want ErrMetricsInUse", err)
	}
	first.Close()
	second, err := New(Options{MaxBytes: 1 << 20, Metrics: set})
	if err != nil {
		t.Fatalf("New after Close: %v", err)
	}
	second.Close()
}

func TestMetricsKindsBounded(t *testing.T) {
	set := metrics.NewSet()
	c := newTestCache(t, Options{Metrics: set})
	for i := range 3 * maxKinds {
		Get[string](c, Key{Kind: "kind" + strconv.Itoa(i)})
	}
	labels := 0
	for _, name := range set.ListMetricNames() {
		if strings.HasPrefix(name, "usipipo_cache_misses_total{") {
			labels++
		}
	}
	if labels > maxKinds+1 {
		t.Fatalf("%d kind labels, want at most %d", labels, maxKinds+1)
	}
	if got := scrape(t, set)[`usipipo_cache_misses_total{kind="other"}`]; got != 2*maxKinds {
		t.Fatalf(`misses{kind="other"} = %v, want %d`, got, 2*maxKinds)
	}
}

func TestKindLabel(t *testing.T) {
	tests := []struct{ in, want string }{
		{"key", "key"},
		{"", "none"},
		{`a"b\c`, "a_b_c"},
		{"línea\n", "l_nea_"},
		{strings.Repeat("x", 100), strings.Repeat("x", 64)},
	}
	for _, tt := range tests {
		if got := kindLabel(tt.in); got != tt.want {
			t.Errorf("kindLabel(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzKindLabel: no Kind may produce a metric name the metrics library
// rejects, since it would panic on the Get path.
func FuzzKindLabel(f *testing.F) {
	for _, s := range []string{"key", "", `"}`, "\n", "\xff", "a=b,c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, kind string) {
		name := `usipipo_cache_hits_total{kind="` + kindLabel(kind) + `"}`
		if err := metrics.ValidateMetric(name); err != nil {
			t.Fatalf("kind %q gives invalid metric %q: %v", kind, name, err)
		}
	})
}
