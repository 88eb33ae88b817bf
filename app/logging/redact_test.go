package logging_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/usipipo/usipipo/app/logging"
)

func TestSensitive(t *testing.T) {
	for _, key := range []string{
		"password", "passphrase", "token", "secret", "private_key", "psk", "api_key", "authorization",
		"cookie", "totp", "PASSWORD", "Authorization", "Private-Key", "API_KEY", "bot_token",
		"client_secret", "admin_password", "Refresh_Token", "webhook-secret", "x_PASSWORD", "_token",
	} {
		if !logging.Sensitive(key) {
			t.Errorf("Sensitive(%q) = false", key)
		}
	}
	for _, key := range []string{
		"", "ps", "tokens", "token_count", "secretary", "user_id", "vpn_type", "_token_", "pass", "cookies",
		"set_cookie", "passwords", "tokenizer", "totp_ok", "ip", "token_", "my_tokens",
	} {
		if logging.Sensitive(key) {
			t.Errorf("Sensitive(%q) = true", key)
		}
	}
}

type secretValuer string

func (s secretValuer) LogValue() slog.Value { return slog.StringValue(string(s)) }

type credentials struct{ user, pass string }

func (c credentials) LogValue() slog.Value {
	return slog.GroupValue(slog.String("user", c.user), slog.String("password", c.pass))
}

// TestRedactionAtDepth hides secrets in record attributes, With attributes,
// groups at any depth, and values that resolve through LogValuer.
func TestRedactionAtDepth(t *testing.T) {
	var b bytes.Buffer
	l := logging.New(&b, "api", nil).With("api_key", "S1-with").WithGroup("req").With("Cookie", "S2-cookie")
	l.Info("login",
		"password", "S3-pw",
		slog.Group("a", slog.Group("b", slog.Group("c", "bot_token", "S4-deep", "ok", "visible"))),
		"creds", credentials{"ana", "S5-valuer"},
		"totp", secretValuer("S6-resolved"),
		slog.Group("secret", "inner", "S7-group"),
		"Authorization", slog.GroupValue(slog.String("scheme", "S8-groupvalue")),
		slog.Group("", "psk", "S9-inline"),
		"wg", slog.GroupValue(slog.Any("keys", credentials{"u", "S10-nested-valuer"})),
		"private-key", []byte("S11-bytes"),
	)
	out := b.String()
	for i := 1; i <= 11; i++ {
		for _, secret := range []string{"S1-", "S2-", "S3-", "S4-", "S5-", "S6-", "S7-", "S8-", "S9-", "S10-", "S11-"} {
			if strings.Contains(out, secret) {
				t.Fatalf("%s leaked: %s", secret, out)
			}
		}
	}
	line := parseLines(t, b.Bytes())[0]
	d := line["details"].(map[string]any)
	req := d["req"].(map[string]any)
	checks := map[string]any{
		"api_key":          d["api_key"],
		"Cookie":           req["Cookie"],
		"password":         req["password"],
		"bot_token":        req["a"].(map[string]any)["b"].(map[string]any)["c"].(map[string]any)["bot_token"],
		"creds.password":   req["creds"].(map[string]any)["password"],
		"totp":             req["totp"],
		"secret":           req["secret"],
		"Authorization":    req["Authorization"],
		"psk":              req["psk"],
		"wg.keys.password": req["wg"].(map[string]any)["keys"].(map[string]any)["password"],
		"private-key":      req["private-key"],
	}
	for k, v := range checks {
		if v != "[redacted]" {
			t.Errorf("%s = %v, want [redacted]", k, v)
		}
	}
	if ok := req["a"].(map[string]any)["b"].(map[string]any)["c"].(map[string]any)["ok"]; ok != "visible" {
		t.Errorf("a non-secret sibling = %v", ok)
	}
	if user := req["creds"].(map[string]any)["user"]; user != "ana" {
		t.Errorf("creds.user = %v", user)
	}
}
