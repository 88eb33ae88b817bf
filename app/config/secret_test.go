package config_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/usipipo/usipipo/app/config"
)

const token = "123456789:AAH-SeCrEt_TokenValue"

// TestBotTokenNeverRendered renders a Config holding a bot token every way
// a program might, and looks for the token (and a recognisable piece of it).
func TestBotTokenNeverRendered(t *testing.T) {
	c := mustParse(t, []string{"--bot-token", token, "--bot-api-url", "https://bot:pa55word@api.example"}, nil)
	if c.BotToken.Reveal() != token {
		t.Fatalf("Reveal = %q", c.BotToken.Reveal())
	}
	renderings := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3s", "%-20v", "%T %[1]v"} {
		renderings["config "+verb] = fmt.Sprintf(verb, c)
		renderings["*config "+verb] = fmt.Sprintf(verb, *c)
		renderings["token "+verb] = fmt.Sprintf(verb, c.BotToken)
	}
	renderings["Sprint"] = fmt.Sprint(c.BotToken, *c)
	renderings["Println"] = fmt.Sprintln(c.BotToken, c)
	for name, v := range map[string]any{"json config": c, "json value": *c, "json token": c.BotToken,
		"json map": map[string]any{"t": c.BotToken}} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		renderings[name] = string(b)
	}
	text, _ := c.BotToken.MarshalText()
	renderings["text"] = string(text)
	for name, h := range map[string]func(*bytes.Buffer) slog.Handler{
		"slog json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
		"slog text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
	} {
		var b bytes.Buffer
		l := slog.New(h(&b))
		l.Info("start", "config", c, "value", *c, "token", c.BotToken, "redacted", c.Redacted())
		l.With("token", c.BotToken).WithGroup("g").Info("again", slog.Any("config", c))
		renderings[name] = b.String()
	}
	renderings["Redacted"] = fmt.Sprint(c.Redacted())
	// URL passwords are hidden where settings are meant to be shown.
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("start", "config", c)
	for _, r := range []string{renderings["Redacted"], logged.String()} {
		if strings.Contains(r, "pa55word") || !strings.Contains(r, "https://bot:xxxxx@api.example") {
			t.Errorf("URL password not hidden: %s", r)
		}
	}
	c.BotToken = "not a token but secret"
	renderings["Validate error"] = fmt.Sprint(c.Validate())

	for name, r := range renderings {
		if strings.Contains(r, "SeCrEt") || strings.Contains(r, "not a token") {
			t.Errorf("%s shows the secret: %s", name, r)
		}

		if !strings.Contains(r, "[redacted]") && !strings.Contains(r, "5b72656461637465645d") &&
			!strings.Contains(r, "5B72656461637465645D") && !strings.Contains(r, "[re") {
			t.Errorf("%s does not say [redacted]: %s", name, r)
		}
	}
}

func TestSecretForms(t *testing.T) {
	var empty config.Secret
	s := config.Secret("x")
	for _, tc := range []struct{ got, want string }{
		{s.String(), "[redacted]"},
		{empty.String(), ""},
		{fmt.Sprintf("%#v", s), `config.Secret("[redacted]")`},
		{fmt.Sprintf("%#v", empty), `config.Secret("")`},
		{s.LogValue().String(), "[redacted]"},
		{must(json.Marshal(s)), `"[redacted]"`},
		{must(json.Marshal(empty)), `""`},
		{c().Redacted()["bot-token"], "[redacted]"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func c() *config.Config {
	c := config.Default()
	c.BotToken = token
	return c
}

func must(b []byte, err error) string {
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestRedacted(t *testing.T) {
	path := writeFile(t, "admin-id = 5", "admin-id = 6")
	cfg := mustParse(t, []string{"--config", path, "--mtproto-dc", "-2=b:443", "--mtproto-dc", "1=a:443",
		"--qvapay-url", "https://id:key@qvapay.com/api", "--egress-deny", "10.0.0.0/8"}, nil)
	r := cfg.Redacted()
	for k, want := range map[string]string{
		"config": path, "admin-id": "5,6", "mtproto-dc": "-2=b:443,1=a:443",
		"qvapay-url": "https://id:xxxxx@qvapay.com/api", "egress-deny": "10.0.0.0/8", "bot-token": "",
		"backup-every": "24h", "log-level": "info",
	} {
		if r[k] != want {
			t.Errorf("Redacted[%s] = %q, want %q", k, r[k], want)
		}
	}
	var b bytes.Buffer
	slog.New(slog.NewJSONHandler(&b, nil)).Info("start", "config", cfg)
	var line struct{ Config map[string]string }
	if err := json.Unmarshal(b.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	if line.Config["admin_id"] != "5,6" || line.Config["config"] != path || len(line.Config) != len(r) {
		t.Errorf("logged config %v", line.Config)
	}
}
