package config_test

import (
	"errors"
	"flag"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app/config"
)

// env builds a lookupEnv from pairs.
func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// writeFile writes a settings file into a temp dir and returns its path.
func writeFile(t *testing.T, lines ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "usipipo.conf")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustParse(t *testing.T, args []string, lookup func(string) (string, bool)) *config.Config {
	t.Helper()
	c, err := config.Parse(args, lookup)
	if err != nil {
		t.Fatalf("Parse(%q): %v", args, err)
	}
	return c
}

func envName(name string) string {
	return "USIPIPO_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// settingCases gives, for every setting, good text (several values for a
// repeatable one) and the typed value it must become.
var settingCases = []struct {
	name  string
	texts []string
	get   func(*config.Config) any
	want  any
}{
	{"data", []string{"/srv/usipipo"}, func(c *config.Config) any { return c.Data }, "/srv/usipipo"},
	{"http", []string{"0.0.0.0:9000"}, func(c *config.Config) any { return c.HTTP }, "0.0.0.0:9000"},
	{"http-tls", []string{"self-signed"}, func(c *config.Config) any { return c.HTTPTLS }, config.HTTPTLSSelfSigned},
	{"wg-listen", []string{"[::]:51821"}, func(c *config.Config) any { return c.WGListen }, "[::]:51821"},
	{"wg-mode", []string{"netstack"}, func(c *config.Config) any { return c.WGMode }, config.WGModeNetstack},
	{"wg-iface", []string{"wg-sell0"}, func(c *config.Config) any { return c.WGIface }, "wg-sell0"},
	{"ss-listen", []string{":8389"}, func(c *config.Config) any { return c.SSListen }, ":8389"},
	{"mtproto-listen", []string{":443"}, func(c *config.Config) any { return c.MTProtoListen }, ":443"},
	{"bot-token", []string{"123456:ABC-def_ghi"}, func(c *config.Config) any { return c.BotToken.Reveal() }, "123456:ABC-def_ghi"},
	{"public-host", []string{"vpn.example.com"}, func(c *config.Config) any { return c.PublicHost }, "vpn.example.com"},
	{"public-listen", []string{":443"}, func(c *config.Config) any { return c.PublicListen }, ":443"},
	{"public-api", []string{"true"}, func(c *config.Config) any { return c.PublicAPI }, true},
	{"bot-webhook", []string{"true"}, func(c *config.Config) any { return c.BotWebhook }, true},
	{"mtproto-fast", []string{"true"}, func(c *config.Config) any { return c.MTProtoFast }, true},
	{"mtproto-domain", []string{"www.example.org"}, func(c *config.Config) any { return c.MTProtoDomain }, "www.example.org"},
	{"outline-api", []string{"0.0.0.0:8181"}, func(c *config.Config) any { return c.OutlineAPI }, "0.0.0.0:8181"},
	{"egress-allow", []string{"10.0.0.0/8", "192.0.2.7"}, func(c *config.Config) any { return c.EgressAllow },
		[]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32")}},
	{"egress-deny", []string{"2001:db8::/32", "2001:db8::1"}, func(c *config.Config) any { return c.EgressDeny },
		[]netip.Prefix{netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("2001:db8::1/128")}},
	{"bot-api-url", []string{"http://127.0.0.1:8081"}, func(c *config.Config) any { return c.BotAPIURL }, "http://127.0.0.1:8081"},
	{"mtproto-dc", []string{"2=149.154.167.51:443", "-2=149.154.167.151:443", "10002=149.154.167.40:443"},
		func(c *config.Config) any { return c.MTProtoDC },
		map[int]string{2: "149.154.167.51:443", -2: "149.154.167.151:443", 10002: "149.154.167.40:443"}},
	{"shadowmere-url", []string{"https://shadowmere.example/api/sub"}, func(c *config.Config) any { return c.ShadowmereURL }, "https://shadowmere.example/api/sub"},
	{"qvapay-url", []string{"http://[::1]:9999/api"}, func(c *config.Config) any { return c.QvaPayURL }, "http://[::1]:9999/api"},
	{"tls-cert", []string{"/etc/usipipo/cert.pem"}, func(c *config.Config) any { return c.TLSCert }, "/etc/usipipo/cert.pem"},
	{"tls-key", []string{"/etc/usipipo/key.pem"}, func(c *config.Config) any { return c.TLSKey }, "/etc/usipipo/key.pem"},
	{"passphrase-file", []string{"/run/credentials/pass"}, func(c *config.Config) any { return c.PassphraseFile }, "/run/credentials/pass"},
	{"log-level", []string{"debug"}, func(c *config.Config) any { return c.LogLevel }, slog.LevelDebug},
	{"node", []string{"node-1.havana"}, func(c *config.Config) any { return c.Node }, "node-1.havana"},
	{"admin-id", []string{"123", "9876543210"}, func(c *config.Config) any { return c.AdminIDs }, []int64{123, 9876543210}},
	{"admin-email", []string{"ops@example.org", "Ana <ana@example.org>"}, func(c *config.Config) any { return c.AdminEmails }, []string{"ops@example.org", "Ana <ana@example.org>"}},
	{"smtp-host", []string{"smtp.example.org"}, func(c *config.Config) any { return c.SMTPHost }, "smtp.example.org"},
	{"smtp-port", []string{"2525"}, func(c *config.Config) any { return c.SMTPPort }, 2525},
	{"smtp-user", []string{"notify"}, func(c *config.Config) any { return c.SMTPUser }, "notify"},
	{"smtp-password", []string{"p4ss word"}, func(c *config.Config) any { return c.SMTPPassword.Reveal() }, "p4ss word"},
	{"smtp-from", []string{"uSipipo <node@example.org>"}, func(c *config.Config) any { return c.SMTPFrom }, "uSipipo <node@example.org>"},
	{"backup-every", []string{"1h30m"}, func(c *config.Config) any { return c.BackupEvery }, 90 * time.Minute},
	{"backup-keep", []string{"3"}, func(c *config.Config) any { return c.BackupKeep }, 3},
	{"cache-mb", []string{"0"}, func(c *config.Config) any { return c.CacheMB }, 0},
	{"wg-v4-pool", []string{"10.99.0.0/24"}, func(c *config.Config) any { return c.WGV4Pool }, netip.MustParsePrefix("10.99.0.0/24")},
	{"wg-v6-pool", []string{"fd99::/112"}, func(c *config.Config) any { return c.WGV6Pool }, netip.MustParsePrefix("fd99::/112")},
}

func TestEverySettingHasACase(t *testing.T) {
	var tested []string
	for _, tc := range settingCases {
		tested = append(tested, tc.name)
	}
	all := slices.Sorted(maps.Keys(config.Default().Redacted()))
	slices.Sort(tested)
	if !slices.Equal(all, tested) {
		t.Errorf("settings %v, cases %v", all, tested)
	}
}

// TestEachSettingFromEachSource sets one setting through one source and
// checks its typed value, its recorded source, and that nothing else moved.
func TestEachSettingFromEachSource(t *testing.T) {
	defaults := config.Default().Redacted()
	for _, tc := range settingCases {
		sources := map[string]func(t *testing.T) (args []string, lookup func(string) (string, bool), wantSource string){
			"flag": func(t *testing.T) ([]string, func(string) (string, bool), string) {
				var args []string
				for _, v := range tc.texts {
					if v == "true" || v == "false" { // a yes/no flag takes its value after "="
						args = append(args, "--"+tc.name+"="+v)
					} else {
						args = append(args, "--"+tc.name, v)
					}
				}
				return args, nil, "command line"
			},
			"env": func(t *testing.T) ([]string, func(string) (string, bool), string) {
				return nil, env(envName(tc.name), strings.Join(tc.texts, ",")), envName(tc.name)
			},
			"file": func(t *testing.T) ([]string, func(string) (string, bool), string) {
				lines := []string{"# settings"}
				for _, v := range tc.texts {
					lines = append(lines, tc.name+" = "+v)
				}
				path := writeFile(t, lines...)
				return []string{"--config", path}, nil, path + ":2"
			},
		}
		for source, setup := range sources {
			t.Run(tc.name+"/"+source, func(t *testing.T) {
				args, lookup, wantSource := setup(t)
				c := mustParse(t, args, lookup)
				if got := tc.get(c); !reflect.DeepEqual(got, tc.want) {
					t.Errorf("got %#v, want %#v", got, tc.want)
				}
				if got := c.Source(tc.name); got != wantSource {
					t.Errorf("Source = %q, want %q", got, wantSource)
				}
				for name, v := range c.Redacted() {
					if name != tc.name && name != "config" && v != defaults[name] {
						t.Errorf("%s changed to %q", name, v)
					}
				}
			})
		}
	}
}

func TestDefaults(t *testing.T) {
	c := mustParse(t, nil, nil)
	want := config.Default()
	if !reflect.DeepEqual(c.Redacted(), want.Redacted()) {
		t.Errorf("Parse of nothing = %v, want %v", c.Redacted(), want.Redacted())
	}
	for name, v := range map[string]string{
		"data": "./data", "http": "127.0.0.1:8080", "http-tls": "off", "wg-listen": ":51820", "wg-mode": "auto", "wg-iface": "usipipo0",
		"ss-listen": ":8388", "mtproto-listen": ":8443", "mtproto-fast": "false", "bot-token": "", "public-host": "",
		"public-listen": "", "public-api": "false", "bot-webhook": "false", "egress-allow": "", "egress-deny": "",
		"bot-api-url": "https://api.telegram.org", "mtproto-dc": "", "shadowmere-url": "",
		"qvapay-url": "https://qvapay.com/api", "tls-cert": "", "tls-key": "", "passphrase-file": "",
		"log-level": "info", "admin-id": "", "backup-every": "24h", "backup-keep": "7",
		"cache-mb": "64", "wg-v4-pool": "10.66.0.0/16", "wg-v6-pool": "fd66::/64",
		"admin-email": "", "smtp-host": "", "smtp-port": "587", "smtp-user": "", "smtp-password": "", "smtp-from": "",
	} {
		if got := c.Redacted()[name]; got != v {
			t.Errorf("default %s = %q, want %q", name, got, v)
		}
		if got := c.Source(name); got != "default" {
			t.Errorf("Source(%s) = %q, want default", name, got)
		}
	}
	if host, _ := os.Hostname(); host != "" && c.Node != host {
		t.Errorf("default node = %q, want the host name %q", c.Node, host)
	}
}

func TestPrecedence(t *testing.T) {
	file := writeFile(t, "http = 127.0.0.1:1001")
	for _, tc := range []struct {
		name       string
		args       []string
		env        []string
		want, from string
	}{
		{"default", nil, nil, "127.0.0.1:8080", "default"},
		{"file", []string{"--config", file}, nil, "127.0.0.1:1001", file + ":1"},
		{"env over file", []string{"--config", file}, []string{"USIPIPO_HTTP", "127.0.0.1:1002"}, "127.0.0.1:1002", "USIPIPO_HTTP"},
		{"flag over env and file", []string{"--config", file, "--http", "127.0.0.1:1003"}, []string{"USIPIPO_HTTP", "127.0.0.1:1002"}, "127.0.0.1:1003", "command line"},
		{"flag over env", []string{"--http=127.0.0.1:1003"}, []string{"USIPIPO_HTTP", "127.0.0.1:1002"}, "127.0.0.1:1003", "command line"},
		{"file via env", nil, []string{"USIPIPO_CONFIG", file}, "127.0.0.1:1001", file + ":1"},
		{"empty env is not set", []string{"--config", file}, []string{"USIPIPO_HTTP", ""}, "127.0.0.1:1001", file + ":1"},
		{"last flag wins", []string{"--http", "127.0.0.1:1", "-http", "127.0.0.1:2"}, nil, "127.0.0.1:2", "command line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustParse(t, tc.args, env(tc.env...))
			if c.HTTP != tc.want || c.Source("http") != tc.from {
				t.Errorf("http = %q from %q, want %q from %q", c.HTTP, c.Source("http"), tc.want, tc.from)
			}
		})
	}
}

func TestConfigFlagOverConfigEnv(t *testing.T) {
	a := writeFile(t, "node = from-a")
	b := writeFile(t, "node = from-b")
	c := mustParse(t, []string{"--config", a}, env("USIPIPO_CONFIG", b))
	if c.Node != "from-a" || c.File != a || c.Source("config") != "command line" {
		t.Errorf("node %q file %q from %q; want from-a, %s, command line", c.Node, c.File, c.Source("config"), a)
	}
	c = mustParse(t, []string{"--config="}, env("USIPIPO_CONFIG", b))
	if c.File != "" || c.Node == "from-b" {
		t.Errorf(`--config="" read %q`, c.File)
	}
	c = mustParse(t, nil, env("USIPIPO_CONFIG", b))
	if c.Node != "from-b" || c.File != b || c.Source("config") != "USIPIPO_CONFIG" {
		t.Errorf("node %q file %q from %q; want from-b, %s, USIPIPO_CONFIG", c.Node, c.File, c.Source("config"), b)
	}
}

// TestRepeatablesAcrossSources: the highest source gives the whole list; lists
// from lower sources are replaced, not merged.
func TestRepeatablesAcrossSources(t *testing.T) {
	file := writeFile(t,
		"egress-allow = 10.1.0.0/16",
		"egress-allow = 10.2.0.0/16",
		"mtproto-dc = 1=149.154.175.50:443",
		"admin-id = 1",
		"admin-id = 2",
	)
	pfx := func(ss ...string) []netip.Prefix {
		var ps []netip.Prefix
		for _, s := range ss {
			ps = append(ps, netip.MustParsePrefix(s))
		}
		return ps
	}
	for _, tc := range []struct {
		name   string
		args   []string
		env    []string
		allow  []netip.Prefix
		dc     map[int]string
		admins []int64
	}{
		{"file only", []string{"--config", file}, nil,
			pfx("10.1.0.0/16", "10.2.0.0/16"), map[int]string{1: "149.154.175.50:443"}, []int64{1, 2}},
		{"env replaces file", []string{"--config", file},
			[]string{"USIPIPO_EGRESS_ALLOW", "10.3.0.0/16, 10.4.0.0/16", "USIPIPO_MTPROTO_DC", "2=149.154.167.51:443", "USIPIPO_ADMIN_ID", "3"},
			pfx("10.3.0.0/16", "10.4.0.0/16"), map[int]string{2: "149.154.167.51:443"}, []int64{3}},
		{"flag replaces env and file",
			[]string{"--config", file, "--egress-allow", "10.5.0.0/16", "--mtproto-dc", "4=149.154.167.91:443", "--admin-id", "5", "--admin-id", "6"},
			[]string{"USIPIPO_EGRESS_ALLOW", "10.3.0.0/16", "USIPIPO_ADMIN_ID", "3"},
			pfx("10.5.0.0/16"), map[int]string{4: "149.154.167.91:443"}, []int64{5, 6}},
		{"one setting from each source",
			[]string{"--config", file, "--admin-id", "7"},
			[]string{"USIPIPO_EGRESS_ALLOW", "10.6.0.0/16"},
			pfx("10.6.0.0/16"), map[int]string{1: "149.154.175.50:443"}, []int64{7}},
		{"an env list of only commas is not set", []string{"--config", file},
			[]string{"USIPIPO_EGRESS_ALLOW", " , ,"},
			pfx("10.1.0.0/16", "10.2.0.0/16"), map[int]string{1: "149.154.175.50:443"}, []int64{1, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustParse(t, tc.args, env(tc.env...))
			if !slices.Equal(c.EgressAllow, tc.allow) {
				t.Errorf("egress-allow = %v, want %v", c.EgressAllow, tc.allow)
			}
			if !maps.Equal(c.MTProtoDC, tc.dc) {
				t.Errorf("mtproto-dc = %v, want %v", c.MTProtoDC, tc.dc)
			}
			if !slices.Equal(c.AdminIDs, tc.admins) {
				t.Errorf("admin-id = %v, want %v", c.AdminIDs, tc.admins)
			}
		})
	}
}

func TestBoolFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  []string
		want bool
	}{
		{[]string{"--public-api"}, nil, true},
		{[]string{"--public-api=false"}, []string{"USIPIPO_PUBLIC_API", "true"}, false},
		{nil, []string{"USIPIPO_PUBLIC_API", "1"}, true},
		{nil, []string{"USIPIPO_PUBLIC_API", "FALSE"}, false},
	} {
		c := mustParse(t, tc.args, env(tc.env...))
		if c.PublicAPI != tc.want {
			t.Errorf("%q %q: public-api = %v, want %v", tc.args, tc.env, c.PublicAPI, tc.want)
		}
	}
}

func TestHelp(t *testing.T) {
	for _, arg := range []string{"-h", "--help", "-help"} {
		if _, err := config.Parse([]string{arg}, nil); !errors.Is(err, flag.ErrHelp) {
			t.Errorf("Parse(%s) = %v, want flag.ErrHelp", arg, err)
		}
	}
	var b strings.Builder
	if err := config.Usage(&b); err != nil {
		t.Fatal(err)
	}
	for _, tc := range settingCases {
		if !strings.Contains(b.String(), "--"+tc.name+" ") && !strings.Contains(b.String(), "--"+tc.name+"\n") {
			t.Errorf("usage lacks --%s:\n%s", tc.name, b.String())
		}
	}
}

// TestParseErrors: a value that cannot be converted, an unknown flag, a bad
// file line — each stops Parse with one error naming the setting and source.
func TestParseErrors(t *testing.T) {
	file := writeFile(t, "# line 1", "", "egress-allow = 10.0.0.1/8")
	for _, tc := range []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"unknown flag", []string{"--htp", "x"}, nil, "config: unknown flag --htp (see --help)"},
		{"missing value", []string{"--http"}, nil, "config: --http needs a value"},
		{"bool with a separate value", []string{"--public-api", "true"}, nil,
			`config: unexpected argument "true" (a yes/no flag takes its value after "=", as in --public-api=true)`},
		{"stray argument", []string{"--http", ":1", "extra"}, nil, `config: unexpected argument "extra" (settings are --name value)`},
		{"duration", []string{"--backup-every", "abc"}, nil,
			`config: --backup-every "abc" (from command line): invalid duration (want e.g. 24h, 90m or 0)`},
		{"duration from env", nil, []string{"USIPIPO_BACKUP_EVERY", "1 day"},
			`config: --backup-every "1 day" (from USIPIPO_BACKUP_EVERY): invalid duration (want e.g. 24h, 90m or 0)`},
		{"cidr with host bits from file", []string{"--config", file}, nil,
			`config: --egress-allow "10.0.0.1/8" (from ` + file + `:3): host bits set (the network is 10.0.0.0/8)`},
		{"cidr", nil, []string{"USIPIPO_EGRESS_DENY", "10.0.0.0/8,not-a-cidr"},
			`config: --egress-deny "not-a-cidr" (from USIPIPO_EGRESS_DENY): invalid CIDR or IP (want e.g. 10.0.0.0/8, 2001:db8::/32 or 192.0.2.7)`},
		{"cidr length", []string{"--egress-deny", "10.0.0.0/33"}, nil,
			`config: --egress-deny "10.0.0.0/33" (from command line): invalid CIDR (want e.g. 10.0.0.0/8 or 2001:db8::/32)`},
		{"dc without =", []string{"--mtproto-dc", "149.154.167.51:443"}, nil,
			`config: --mtproto-dc "149.154.167.51:443" (from command line): want N=ADDR, e.g. 2=149.154.167.51:443`},
		{"dc zero", []string{"--mtproto-dc", "0=149.154.167.51:443"}, nil,
			`config: --mtproto-dc "0=149.154.167.51:443" (from command line): DC index must not be 0`},
		{"dc index", []string{"--mtproto-dc", "two=149.154.167.51:443"}, nil,
			`config: --mtproto-dc "two=149.154.167.51:443" (from command line): DC index "two" is not a whole number`},
		{"dc address", []string{"--mtproto-dc", "2=149.154.167.51"}, nil,
			`config: --mtproto-dc "2=149.154.167.51" (from command line): invalid address: missing port in address`},
		{"dc host", []string{"--mtproto-dc", "2=:443"}, nil,
			`config: --mtproto-dc "2=:443" (from command line): invalid address: missing host`},
		{"dc twice", []string{"--mtproto-dc", "2=149.154.167.51:443", "--mtproto-dc", "2=149.154.167.50:443"}, nil,
			`config: --mtproto-dc "2=149.154.167.50:443" (from command line): DC index given twice`},
		{"admin id", []string{"--admin-id", "-5"}, nil, `config: --admin-id "-5" (from command line): telegram ids are positive`},
		{"admin email", []string{"--admin-email", "not mail"}, nil, `config: --admin-email "not mail" (from command line): want an e-mail address such as ops@example.org`},
		{"admin id text", nil, []string{"USIPIPO_ADMIN_ID", "1,@bob"}, `config: --admin-id "@bob" (from USIPIPO_ADMIN_ID): want a whole number`},
		{"log level", []string{"--log-level", "verbose"}, nil, `config: --log-level "verbose" (from command line): want debug, info, warn or error`},
		{"bool", []string{"--public-api=maybe"}, nil, `config: --public-api "maybe" (from command line): want true or false`},
		{"int", []string{"--backup-keep", "seven"}, nil, `config: --backup-keep "seven" (from command line): want a whole number`},
		{"pool", nil, []string{"USIPIPO_WG_V4_POOL", "10.66.0.0"}, ""}, // a bare IP is a /32: Validate rejects it
		{"missing config file", []string{"--config", "/nonexistent/usipipo.conf"}, nil,
			`config: --config "/nonexistent/usipipo.conf" (from command line): open /nonexistent/usipipo.conf: no such file or directory`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse(tc.args, env(tc.env...))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Parse error\n got %v\nwant %s", err, tc.want)
			}
		})
	}
}

func TestErrorIsTyped(t *testing.T) {
	_, err := config.Parse(nil, env("USIPIPO_CACHE_MB", "lots"))
	var ce *config.Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v is not a *config.Error", err)
	}
	if ce.Setting != "cache-mb" || ce.Value != "lots" || ce.Source != "USIPIPO_CACHE_MB" {
		t.Errorf("got %+v", ce)
	}
}
