package node

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"testing"
)

// The node serves the REST API on --http: the operator logs in with the
// one-time password init printed, must change it, then works with the token.
func TestNodeServesTheAPI(t *testing.T) {
	r := start(t, testConfig(t, filepath.Join(t.TempDir(), "data")))
	base := "http://" + r.node.HTTPAddr.String() + "/api/v1"
	pw := regexp.MustCompile(`One-time password:\s+(\S+)`).FindStringSubmatch(r.term.String())[1]
	call := func(method, path, token string, body any, want int) map[string]any {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, base+path, rd)
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d %v, want %d", method, path, resp.StatusCode, out, want)
		}
		return out
	}
	call("GET", "/users", "", nil, 401)
	call("POST", "/auth/login", "", map[string]string{"username": "admin", "password": pw + "x"}, 401)
	tok := call("POST", "/auth/login", "", map[string]string{"username": "admin", "password": pw}, 200)
	if tok["must_change_password"] != true {
		t.Fatalf("login with the one-time password: %v", tok)
	}
	call("GET", "/users", tok["access_token"].(string), nil, 403)
	call("POST", "/auth/password", tok["access_token"].(string), map[string]string{"current_password": pw, "new_password": "a much longer new secret 42"}, 204)
	tok = call("POST", "/auth/refresh", "", map[string]string{"refresh_token": tok["refresh_token"].(string)}, 200)
	access := tok["access_token"].(string)
	u := call("POST", "/users", access, map[string]any{"telegram_id": 4242}, 201)
	created := call("POST", "/vpn/create", access, map[string]any{"user_id": u["id"], "vpn_type": "outline", "is_trial": true}, 201)
	k, _ := created["key"].(map[string]any)
	if k["id"] == nil || k["secret"] != nil {
		t.Fatalf("vpn/create: %v", created)
	}
	conf := call("GET", "/keys/"+k["id"].(string)+"/config", access, nil, 200)
	if s, _ := conf["text"].(string); len(s) < 10 || s[:5] != "ss://" {
		t.Fatalf("config %v", conf)
	}
}
