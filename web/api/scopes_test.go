package api

import (
	"strings"
	"testing"
)

// TestEveryRouteNeedsItsScope calls every documented operation that needs
// a scope without a credential (401) and with each lower scope (403).
func TestEveryRouteNeedsItsScope(t *testing.T) {
	t.Parallel()
	ta := startAPI(t)
	id := strings.Repeat("0", 26)
	lower := map[string][]string{"read": nil, "write": {"read"}, "admin": {"read", "write"}}
	n := 0
	for path, item := range specDoc(t).Paths.Map() {
		for method, op := range item.Operations() {
			scope, _ := op.Extensions["x-scope"].(string)
			if scope == "" {
				continue
			}
			n++
			p := strings.NewReplacer("{id}", id).Replace(path)
			r := ta.do(req{method: method, path: p})
			if r.status != 401 {
				t.Errorf("%s %s without a token: %d", method, path, r.status)
			}
			for _, s := range lower[scope] {
				r := ta.do(req{method: method, path: p, token: ta.tokens[s]})
				if r.status != 403 || r.problemType() != "insufficient-scope" {
					t.Errorf("%s %s (%s) with a %s key: %d %s", method, path, scope, s, r.status, r.problemType())
				}
			}
		}
	}
	if n < 50 {
		t.Fatalf("only %d scoped operations documented", n)
	}
}
