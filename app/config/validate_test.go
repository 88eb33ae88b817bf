package config_test

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usipipo/usipipo/app/config"
)

// validIn returns a default Config whose data dir is a fresh temp dir.
func validIn(t *testing.T) *config.Config {
	t.Helper()
	c := config.Default()
	c.Data = t.TempDir()
	return c
}

func TestValidateDefaults(t *testing.T) {
	if err := validIn(t).Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestValidateParsed: values that Parse converts but Validate rejects, each
// reported against its setting and source.
func TestValidateParsed(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, "data = "+dir, "qvapay-url = ftp://qvapay.com")
	for _, tc := range []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"the example", nil, []string{"USIPIPO_HTTP", "abc"},
			`config: --http "abc" (from USIPIPO_HTTP): invalid address: missing port in address`},
		{"port range", []string{"--wg-listen", ":65536"}, nil,
			`config: --wg-listen ":65536" (from command line): invalid address: port must be a number from 0 to 65535`},
		{"smtp port", nil, []string{"USIPIPO_SMTP_PORT", "70000"},
			`config: --smtp-port "70000" (from USIPIPO_SMTP_PORT): want a port from 1 to 65535`},
		{"port name", []string{"--ss-listen", ":http"}, nil,
			`config: --ss-listen ":http" (from command line): invalid address: port must be a number from 0 to 65535`},
		{"empty address", []string{"--mtproto-listen="}, nil,
			`config: --mtproto-listen "" (from command line): must not be empty`},
		{"bad host", []string{"--http", "bad host:80"}, nil,
			`config: --http "bad host:80" (from command line): invalid address: invalid host name`},
		{"public listen", nil, []string{"USIPIPO_PUBLIC_LISTEN", "443"},
			`config: --public-listen "443" (from USIPIPO_PUBLIC_LISTEN): invalid address: missing port in address`},
		{"http tls", []string{"--http-tls", "on"}, nil,
			`config: --http-tls "on" (from command line): want off, self-signed or cert`},
		{"wg mode", []string{"--wg-mode", "kernel"}, nil,
			`config: --wg-mode "kernel" (from command line): want auto, tun or netstack`},
		{"wg iface", []string{"--wg-iface", "a/b"}, nil,
			`config: --wg-iface "a/b" (from command line): want an interface name of 1 to 15 characters without '/', ':', quotes or spaces`},
		{"public host", []string{"--public-host", "vpn.example.com:443"}, nil,
			`config: --public-host "vpn.example.com:443" (from command line): invalid host name`},
		{"mtproto domain IP", []string{"--mtproto-domain", "203.0.113.7"}, nil,
			`config: --mtproto-domain "203.0.113.7" (from command line): want a DNS name: clients send it as the TLS server name, where an IP address gives the proxy away`},
		{"mtproto domain IP, short form", []string{"--mtproto-domain", "10.1"}, nil,
			`config: --mtproto-domain "10.1" (from command line): want a DNS name: clients send it as the TLS server name, where an IP address gives the proxy away`},
		{"mtproto domain one label", nil, []string{"USIPIPO_MTPROTO_DOMAIN", "localhost"},
			`config: --mtproto-domain "localhost" (from USIPIPO_MTPROTO_DOMAIN): want a DNS name such as www.example.com (letters, digits, hyphens and dots, no trailing dot)`},
		{"url scheme from file", nil, []string{"USIPIPO_CONFIG", file},
			`config: --qvapay-url "ftp://qvapay.com" (from ` + file + `:2): invalid URL: want http:// or https://`},
		{"url host", []string{"--bot-api-url", "http:///bot"}, nil,
			`config: --bot-api-url "http:///bot" (from command line): invalid URL: missing host`},
		{"url parse", []string{"--shadowmere-url", "http://[::1"}, nil,
			`config: --shadowmere-url "http://[::1" (from command line): invalid URL: missing ']' in host`},
		{"url port", []string{"--bot-api-url", "http://127.0.0.1:99999"}, nil,
			`config: --bot-api-url "http://127.0.0.1:99999" (from command line): invalid URL: port must be a number from 0 to 65535`},
		{"url password hidden", []string{"--bot-api-url", "ftp://user:hunter2@example.com"}, nil,
			`config: --bot-api-url "ftp://user:xxxxx@example.com" (from command line): invalid URL: want http:// or https://`},
		{"bot token hidden", []string{"--bot-token", "123456 SECRETVALUE"}, nil,
			`config: --bot-token "[redacted]" (from command line): not a Telegram bot token (want digits:letters, as @BotFather gives)`},
		{"node", []string{"--node", "node one"}, nil,
			`config: --node "node one" (from command line): want 1 to 64 letters, digits, '.', '-' or '_'`},
		{"negative duration", []string{"--backup-every", "-1h"}, nil,
			`config: --backup-every "-1h" (from command line): must not be negative`},
		{"backup keep", []string{"--backup-keep", "0"}, nil,
			`config: --backup-keep "0" (from command line): must be at least 1`},
		{"cache", nil, []string{"USIPIPO_CACHE_MB", "-1"},
			`config: --cache-mb "-1" (from USIPIPO_CACHE_MB): must not be negative`},
		{"v4 pool family", []string{"--wg-v4-pool", "fd00::/64"}, nil,
			`config: --wg-v4-pool "fd00::/64" (from command line): want an IPv4 range`},
		{"v4 pool size", nil, []string{"USIPIPO_WG_V4_POOL", "10.66.0.0"},
			`config: --wg-v4-pool "10.66.0.0/32" (from USIPIPO_WG_V4_POOL): too small for peers (want /30 or larger)`},
		{"v6 pool bits", []string{"--wg-v6-pool", "fd66::1/64"}, nil,
			`config: --wg-v6-pool "fd66::1/64" (from command line): host bits set (the network is fd66::/64)`},
		{"v6 pool family", []string{"--wg-v6-pool", "::ffff:10.0.0.0/120"}, nil,
			`config: --wg-v6-pool "::ffff:10.0.0.0/120" (from command line): want an IPv6 range`},
		{"tls cert alone", []string{"--tls-cert", "/etc/cert.pem"}, nil,
			`config: --tls-cert "/etc/cert.pem" (from command line): --tls-key must be given too`},
		{"tls key alone", nil, []string{"USIPIPO_TLS_KEY", "/etc/key.pem"},
			`config: --tls-key "/etc/key.pem" (from USIPIPO_TLS_KEY): --tls-cert must be given too`},
		{"public api alone", []string{"--public-api"}, nil,
			`config: --public-api "true" (from command line): needs --public-listen`},
		{"webhook without a token", []string{"--bot-webhook", "--public-listen", ":443", "--public-host", "vpn.example.com"}, nil,
			`config: --bot-webhook "true" (from command line): needs --bot-token`},
		{"webhook without a public listener", nil, []string{"USIPIPO_BOT_WEBHOOK", "true", "USIPIPO_BOT_TOKEN", "1:a", "USIPIPO_PUBLIC_HOST", "vpn.example.com"},
			`config: --bot-webhook "true" (from USIPIPO_BOT_WEBHOOK): needs --public-listen (Telegram posts updates to it over HTTPS)`},
		{"webhook without a public host", []string{"--bot-webhook", "--bot-token", "1:a", "--public-listen", ":443"}, nil,
			`config: --bot-webhook "true" (from command line): needs --public-host (the name in the webhook URL Telegram calls)`},
		{"tls files unreadable", []string{"--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem"}, nil,
			`config: --tls-cert "/nonexistent/cert.pem" (from command line): cannot read: open /nonexistent/cert.pem: no such file or directory`},
		{"passphrase file is a dir", []string{"--passphrase-file", dir}, nil,
			`config: --passphrase-file "` + dir + `" (from command line): is a directory, want a file`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--data", filepath.Join(dir, "data")}, tc.args...)
			if len(tc.env) > 0 && tc.env[0] == "USIPIPO_CONFIG" {
				args = tc.args
			}
			c := mustParse(t, args, env(tc.env...))
			err := c.Validate()
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Validate error\n got %v\nwant %s", err, tc.want)
			}
			if _, ok := errors.AsType[*config.Error](err); !ok {
				t.Errorf("%T is not a *config.Error", err)
			}
		})
	}
}

func TestValidateGood(t *testing.T) {
	dir := t.TempDir()
	cert := filepath.Join(dir, "cert.pem")
	key := filepath.Join(dir, "key.pem")
	for _, f := range []string{cert, key} {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{
		"--data", filepath.Join(dir, "data"), "--http", "[::1]:0", "--wg-listen", "0.0.0.0:51820",
		"--ss-listen", "localhost:8388", "--mtproto-listen", "[fe80::1%lo]:443", "--bot-token", "123:abc_DEF-9",
		"--public-host", "2001:db8::7", "--public-listen", ":443", "--public-api", "--bot-webhook", "--tls-cert", cert, "--tls-key", key,
		"--passphrase-file", key, "--bot-api-url", "http://127.0.0.1:1234/", "--qvapay-url", "https://user:pw@qvapay.com/api",
		"--mtproto-dc", "-2=dc.example:443", "--backup-every", "0", "--cache-mb", "0", "--wg-v4-pool", "10.0.0.0/30",
		"--wg-v6-pool", "fd00::/126", "--node", "a.b-c_d", "--public-host", "vpn.example.com.",
	}
	if err := mustParse(t, args, nil).Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestValidateProgrammatic: a Config built in code is checked too, its
// values reported as coming from the default.
func TestValidateProgrammatic(t *testing.T) {
	c := validIn(t)
	c.EgressDeny = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.1/16")}
	want := `config: --egress-deny "192.168.1.1/16" (from default): host bits set (the network is 192.168.0.0/16)`
	if err := c.Validate(); err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
	c = validIn(t)
	c.MTProtoDC = map[int]string{2: "149.154.167.51:443", 0: "149.154.167.50:443"}
	want = `config: --mtproto-dc "0=149.154.167.50:443" (from default): DC index must not be 0`
	if err := c.Validate(); err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
	c = validIn(t)
	c.LogLevel = 3
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "--log-level") {
		t.Errorf("log level 3: got %v", err)
	}
}

func TestDataDir(t *testing.T) {
	t.Run("created 0700 when missing", func(t *testing.T) {
		c := validIn(t)
		c.Data = filepath.Join(c.Data, "a", "b")
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(c.Data)
		if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
			t.Fatalf("stat %s: %v %v", c.Data, fi.Mode(), err)
		}
		if left, _ := os.ReadDir(c.Data); len(left) != 0 {
			t.Errorf("the write check left %v behind", left)
		}
	})
	t.Run("existing kept as is", func(t *testing.T) {
		c := validIn(t)
		os.Chmod(c.Data, 0o750)
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		if fi, _ := os.Stat(c.Data); fi.Mode().Perm() != 0o750 {
			t.Errorf("mode changed to %v", fi.Mode())
		}
	})
	file := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, data, want string }{
		{"a file", file, `config: --data "` + file + `" (from command line): not a directory`},
		// As root no permission bit stops us, so a path under a regular file
		// stands for a directory that cannot be made or used.
		{"under a file", file + "/data",
			`config: --data "` + file + `/data" (from command line): cannot use data directory: stat ` + file + `/data: not a directory`},
		{"empty", "", `config: --data "" (from command line): must not be empty`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := mustParse(t, []string{"--data=" + tc.data}, nil).Validate()
			if err == nil || err.Error() != tc.want {
				t.Errorf("got %v\nwant %s", err, tc.want)
			}
		})
	}
	t.Run("unreadable", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("running as root, which reads and writes a mode 000 directory; the under-a-file case covers an unusable --data")
		}
		dir := t.TempDir()
		os.Chmod(dir, 0)
		t.Cleanup(func() { os.Chmod(dir, 0o700) })
		err := mustParse(t, []string{"--data", dir}, nil).Validate()
		if err == nil || !strings.HasPrefix(err.Error(), `config: --data "`+dir+`" (from command line): data directory is not readable`) {
			t.Errorf("got %v", err)
		}
	})
	t.Run("unwritable", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("running as root, which writes a mode 500 directory")
		}
		dir := t.TempDir()
		os.Chmod(dir, 0o500)
		t.Cleanup(func() { os.Chmod(dir, 0o700) })
		err := mustParse(t, []string{"--data", dir}, nil).Validate()
		if err == nil || !strings.HasPrefix(err.Error(), `config: --data "`+dir+`" (from command line): data directory is not writable`) {
			t.Errorf("got %v", err)
		}
	})
}
