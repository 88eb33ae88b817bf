package node

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
)

// The API and the panel share one failed-login back-off: a guesser who
// spends the free tries on the API meets the wait on the panel's login
// form too, rather than getting a fresh set of tries there.
func TestLoginBackOffSharedByAPIAndPanel(t *testing.T) {
	r := start(t, testConfig(t, filepath.Join(t.TempDir(), "data")))
	base := "http://" + r.node.HTTPAddr.String()
	login := func() int {
		b, _ := json.Marshal(map[string]string{"username": "admin", "password": "not the password"})
		resp, err := http.Post(base+"/api/v1/auth/login", "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := 0; ; i++ {
		st := login()
		if st == http.StatusTooManyRequests {
			break
		}
		if st != http.StatusUnauthorized || i > 20 {
			t.Fatalf("API login %d: %d", i, st)
		}
	}
	b := newPanelBrowser(t)
	tok := b.csrf(base, "/login")
	st, _, body := b.do(base, "POST", "/login", url.Values{"csrf": {tok}, "username": {"admin"}, "password": {"still not it"}})
	if st != http.StatusTooManyRequests {
		t.Fatalf("panel login after the API's free tries: %d %.200s", st, body)
	}
}
