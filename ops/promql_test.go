package ops

import (
	"regexp"
	"sort"
	"strings"
	"testing"
)

var (
	promString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promSelector = regexp.MustCompile(`\{[^}]*\}`)
	promRange    = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promKeywords = map[string]bool{"and": true, "or": true, "unless": true, "by": true, "without": true, "on": true,
		"ignoring": true, "group_left": true, "group_right": true, "bool": true, "offset": true, "inf": true, "nan": true,
		"atan2": true,
		// aggregation operators, which may precede their argument by a grouping
		"sum": true, "avg": true, "min": true, "max": true, "count": true, "group": true, "stddev": true,
		"stdvar": true, "topk": true, "bottomk": true, "quantile": true, "count_values": true}
	// grafanaVars are the dashboard's variables, replaced by what makes
	// the expression valid PromQL.
	grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$instance", ".*")
)

// metricNames returns the metric names an expression selects: identifiers
// outside label matchers, ranges and grouping lists that are neither
// functions, keywords nor numbers.
func metricNames(expr string) []string {
	e := grafanaVars.Replace(expr)
	e = promString.ReplaceAllString(e, `""`)
	e = promSelector.ReplaceAllString(e, "{}")
	e = promRange.ReplaceAllString(e, "[]")
	e = promGrouping.ReplaceAllString(e, "$1()")
	seen := map[string]bool{}
	for i := 0; i < len(e); {
		c := e[i]
		switch {
		case c >= '0' && c <= '9' || c == '.':
			for i < len(e) && (isIdent(e[i]) || e[i] == '.' || (e[i] == '+' || e[i] == '-') && (e[i-1] == 'e' || e[i-1] == 'E')) {
				i++
			}
		case isIdent(c):
			j := i
			for j < len(e) && isIdent(e[j]) {
				j++
			}
			word := e[i:j]
			k := j
			for k < len(e) && e[k] == ' ' {
				k++
			}
			if !promKeywords[word] && (k == len(e) || e[k] != '(') {
				seen[word] = true
			}
			i = j
		default:
			i++
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func isIdent(c byte) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// ruleExprs returns the expr of every rule in a Prometheus rules file,
// block scalars (expr: |) included.
func ruleExprs(text string) []string {
	var out []string
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		trimmed := strings.TrimSpace(lines[i])
		v, ok := strings.CutPrefix(trimmed, "expr:")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if v != "|" && v != ">" && v != "|-" && v != ">-" {
			out = append(out, v)
			continue
		}
		indent := len(lines[i]) - len(strings.TrimLeft(lines[i], " "))
		var block []string
		for i+1 < len(lines) {
			next := lines[i+1]
			if strings.TrimSpace(next) != "" && len(next)-len(strings.TrimLeft(next, " ")) <= indent {
				break
			}
			block = append(block, strings.TrimSpace(next))
			i++
		}
		out = append(out, strings.TrimSpace(strings.Join(block, " ")))
	}
	return out
}

func TestMetricNames(t *testing.T) {
	cases := map[string]string{
		`up{job="usipipo"} == 0`: "up",
		`histogram_quantile(0.95, sum by (instance, le) (rate(a_bucket{route!="/m"}[5m]))) > 0.5`:                      "a_bucket",
		`sum by (kind) (rate(h_total{instance=~"$instance"}[$__rate_interval])) / (sum by (kind) (rate(m_total[5m])))`: "h_total m_total",
		`(time() - ts{job="x"} > 900) and ts > 0`:                                                                      "ts",
		`process_resident_memory_bytes > 1.5 * 1e9`:                                                                    "process_resident_memory_bytes",
		`deriv(db[6h]) * 86400 > 1073741824`:                                                                           "db",
	}
	for expr, want := range cases {
		if got := strings.Join(metricNames(expr), " "); got != want {
			t.Errorf("metricNames(%s) = %q, want %q", expr, got, want)
		}
	}
	rules := "    - alert: A\n      expr: up == 0\n    - alert: B\n      expr: |\n        rate(x[5m])\n          > 1\n      for: 5m\n"
	if got := strings.Join(ruleExprs(rules), ";"); got != "up == 0;rate(x[5m]) > 1" {
		t.Errorf("ruleExprs = %q", got)
	}
}
