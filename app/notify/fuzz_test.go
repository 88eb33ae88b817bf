package notify

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/usipipo/usipipo/app/pay"
)

// FuzzParseResponse feeds the Bot API answer parser arbitrary bytes: it
// never panics, accepts exactly the answers that say "ok": true, and
// reports every other answer as a *pay.APIError.
func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{
		`{"ok":true,"result":{"message_id":1}}`,
		`{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 5","parameters":{"retry_after":5}}`,
		`{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}`,
		`{"ok":false}`, `<html>502</html>`, ``, `null`, `{"ok":"true"}`,
	} {
		f.Add(200, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, raw []byte) {
		err := parseResponse("sendMessage", status, raw)
		var probe struct {
			OK bool `json:"ok"`
		}
		ok := json.Unmarshal(raw, &probe) == nil && probe.OK
		if (err == nil) != ok {
			t.Fatalf("parse(%q) = %v, ok %v", raw, err, ok)
		}
		if err != nil {
			if _, isAPI := errors.AsType[*pay.APIError](err); !isAPI {
				t.Fatalf("parse(%q) = %T", raw, err)
			}
		}
	})
}
