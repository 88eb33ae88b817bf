package shadowmere

import (
	"encoding/json"
	"net"
	"strconv"
	"testing"
)

// FuzzMerge: whatever an instance answers on /api/sub/ and /api/proxies/,
// the kept entries are bounded, distinct, with valid ports and no check
// results the instance made up.
func FuzzMerge(f *testing.F) {
	f.Add([]byte(`[{"server":"1.2.3.4","server_port":8388,"password":"p","method":"aes-256-gcm","remarks":"r","latency":5,"check":"tcp"}]`),
		[]byte(`{"next":null,"results":[{"ip_address":"1.2.3.4","port":8388,"location_country_code":"de"}]}`))
	f.Add([]byte(`[{"server":"a","server_port":70000},{"server":"a","server_port":1},{"server":"a","server_port":1}]`), []byte(`{}`))
	f.Fuzz(func(t *testing.T, sub, pg []byte) {
		var subs []Proxy
		if json.Unmarshal(sub, &subs) != nil {
			return
		}
		var p page
		json.Unmarshal(pg, &p)
		countries := map[string]string{}
		for _, r := range p.Results {
			countries[net.JoinHostPort(r.IP, strconv.Itoa(r.Port))] = r.Country
		}
		out := merge(subs, countries, 3)
		seen := map[string]bool{}
		for _, e := range out {
			if e.Port <= 0 || e.Port > 65535 || e.Server == "" || seen[e.Addr()] || e.Latency != 0 || e.Check != "" || !e.Checked.IsZero() {
				t.Fatalf("kept %+v", e)
			}
			seen[e.Addr()] = true
		}
		if len(out) > 3 {
			t.Fatalf("kept %d > 3", len(out))
		}
	})
}
