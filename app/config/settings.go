package config

import (
	"errors"
	"log/slog"
	"net/mail"
	"net/netip"
	"slices"
	"strconv"
	"time"
)

// A setting is one configurable value. Its name is the flag name, the file
// key, and (upper-cased) the suffix of its environment variable. The table
// below drives parsing, validation, usage and redaction alike.
type setting struct {
	name       string
	meta       string // placeholder in usage, e.g. ADDR
	usage      string
	defText    string // default shown in usage when Default's value would mislead
	repeatable bool   // given many times; each source replaces the whole list
	boolean    bool   // a bare --flag means true
	secret     bool   // its value is never shown

	set   func(c *Config, v string) error // convert one value into c; appends when repeatable
	reset func(c *Config)                 // repeatable only: empty the list
	show  func(c *Config) []string        // current value(s) as text; secrets redacted
	check func(c *Config) error           // Validate's check; nil = none
}

// settings in the order of the usage text and of validation.
var settings = []*setting{
	scalar("data", "DIR", "data directory; created 0700 if missing", func(c *Config) *string { return &c.Data }, parseString, showString, nil),
	scalar("http", "ADDR", "API, panel and /metrics listen address", func(c *Config) *string { return &c.HTTP }, parseString, showString, checkListenAddr),
	scalar("http-tls", "MODE", "TLS 1.3 on --http: off, self-signed (its SHA-256 is logged) or cert (--tls-cert/--tls-key)", func(c *Config) *string { return &c.HTTPTLS }, parseString, showString, checkHTTPTLS),
	scalar("wg-listen", "ADDR", "WireGuard UDP listen address", func(c *Config) *string { return &c.WGListen }, parseString, showString, checkListenAddr),
	scalar("wg-mode", "MODE", "WireGuard mode: auto, tun or netstack", func(c *Config) *string { return &c.WGMode }, parseString, showString, checkWGMode),
	scalar("wg-iface", "NAME", "WireGuard's interface in tun mode", func(c *Config) *string { return &c.WGIface }, parseString, showString, checkIfaceName),
	scalar("ss-listen", "ADDR", "Shadowsocks TCP+UDP listen address", func(c *Config) *string { return &c.SSListen }, parseString, showString, checkListenAddr),
	scalar("mtproto-listen", "ADDR", "MTProto proxy listen address", func(c *Config) *string { return &c.MTProtoListen }, parseString, showString, checkListenAddr),
	boolean(scalar("mtproto-fast", "", "MTProto fast mode: DC→client bytes pass without re-encryption (less CPU; the DC leg carries the client's downstream key in clear)", func(c *Config) *bool { return &c.MTProtoFast }, parseBool, strconv.FormatBool, nil)),
	scalar("mtproto-domain", "DOMAIN", "domain FakeTLS (ee) MTProto secrets name, sent by clients as TLS SNI; empty = --public-host when it is a DNS name, else dd secrets", func(c *Config) *string { return &c.MTProtoDomain }, parseString, showString, checkOptional(checkCloakDomain)),
	secret(scalar("bot-token", "TOKEN", "Telegram bot token; empty turns the bot off", func(c *Config) *Secret { return &c.BotToken }, parseSecret, Secret.String, checkBotToken)),
	scalar("public-host", "HOST", "host or IP that client configs point at; empty = derive", func(c *Config) *string { return &c.PublicHost }, parseString, showString, checkOptional(checkHost)),
	scalar("public-listen", "ADDR", "public HTTPS listen address; empty = off", func(c *Config) *string { return &c.PublicListen }, parseString, showString, checkOptional(checkListenAddr)),
	boolean(scalar("public-api", "", "also serve /api on the public listener", func(c *Config) *bool { return &c.PublicAPI }, parseBool, strconv.FormatBool, nil)),
	boolean(scalar("bot-webhook", "", "receive Telegram updates by webhook at https://PUBLIC_HOST/tg/webhook on --public-listen instead of polling", func(c *Config) *bool { return &c.BotWebhook }, parseBool, strconv.FormatBool, nil)),
	scalar("outline-api", "ADDR", "Outline Manager API listen address (HTTPS, self-signed, secret path); empty = off", func(c *Config) *string { return &c.OutlineAPI }, parseString, showString, checkOptional(checkListenAddr)),
	list("egress-allow", "CIDR", "range tunnelled traffic may reach (repeatable; an IP means /32 or /128)", func(c *Config) *[]netip.Prefix { return &c.EgressAllow }, parsePrefix, netip.Prefix.String, checkPrefix),
	list("egress-deny", "CIDR", "range tunnelled traffic may not reach (repeatable)", func(c *Config) *[]netip.Prefix { return &c.EgressDeny }, parsePrefix, netip.Prefix.String, checkPrefix),
	scalar("bot-api-url", "URL", "Telegram Bot API base URL", func(c *Config) *string { return &c.BotAPIURL }, parseString, showURL, checkURL),
	dcSetting(),
	scalar("shadowmere-url", "URL", "Shadowmere proxy list URL; empty = off", func(c *Config) *string { return &c.ShadowmereURL }, parseString, showURL, checkOptional(checkURL)),
	scalar("qvapay-url", "URL", "QvaPay API base URL", func(c *Config) *string { return &c.QvaPayURL }, parseString, showURL, checkURL),
	scalar("tls-cert", "FILE", "certificate for the public listener (with --tls-key; default ACME)", func(c *Config) *string { return &c.TLSCert }, parseString, showString, nil),
	scalar("tls-key", "FILE", "private key for --tls-cert", func(c *Config) *string { return &c.TLSKey }, parseString, showString, nil),
	scalar("passphrase-file", "FILE", "file holding the backup passphrase", func(c *Config) *string { return &c.PassphraseFile }, parseString, showString, nil),
	scalar("log-level", "LEVEL", "debug, info, warn or error", func(c *Config) *slog.Level { return &c.LogLevel }, parseLevel, showLevel, checkLevel),
	withDefText(scalar("node", "NAME", "this node's name", func(c *Config) *string { return &c.Node }, parseString, showString, checkNode), "the host name"),
	list("admin-id", "TGID", "Telegram id of an admin (repeatable)", func(c *Config) *[]int64 { return &c.AdminIDs }, parseInt64, showInt64, checkTelegramID),
	list("admin-email", "ADDR", "e-mail address of an admin, for alerts and reports (repeatable)", func(c *Config) *[]string { return &c.AdminEmails }, parseString, showString, checkMailAddress),
	scalar("smtp-host", "HOST", "SMTP relay for e-mail notifications (STARTTLS required); empty = no e-mail", func(c *Config) *string { return &c.SMTPHost }, parseString, showString, checkOptional(checkHost)),
	scalar("smtp-port", "N", "SMTP relay port", func(c *Config) *int { return &c.SMTPPort }, parseInt, strconv.Itoa, checkPort),
	scalar("smtp-user", "USER", "SMTP login; empty = no authentication", func(c *Config) *string { return &c.SMTPUser }, parseString, showString, nil),
	secret(scalar("smtp-password", "PASSWORD", "SMTP password", func(c *Config) *Secret { return &c.SMTPPassword }, parseSecret, Secret.String, nil)),
	scalar("smtp-from", "ADDR", "sender of e-mail notifications", func(c *Config) *string { return &c.SMTPFrom }, parseString, showString, checkOptional(checkMailAddress)),
	scalar("backup-every", "DURATION", "scheduled backup interval; 0 = off", func(c *Config) *time.Duration { return &c.BackupEvery }, parseDuration, showDuration, checkNonNegative[time.Duration]),
	scalar("backup-keep", "N", "scheduled backups kept", func(c *Config) *int { return &c.BackupKeep }, parseInt, strconv.Itoa, checkPositive),
	scalar("cache-mb", "N", "cache size in MiB; 0 = cache off", func(c *Config) *int { return &c.CacheMB }, parseInt, strconv.Itoa, checkNonNegative[int]),
	scalar("wg-v4-pool", "CIDR", "IPv4 range for WireGuard peers", func(c *Config) *netip.Prefix { return &c.WGV4Pool }, parsePrefix, netip.Prefix.String, checkPool4),
	scalar("wg-v6-pool", "CIDR", "IPv6 range for WireGuard peers", func(c *Config) *netip.Prefix { return &c.WGV6Pool }, parsePrefix, netip.Prefix.String, checkPool6),
}

// configSetting is --config: read before the others, never from a file.
const configSetting = "config"

// settingByName indexes settings.
var settingByName = func() map[string]*setting {
	m := make(map[string]*setting, len(settings))
	for _, s := range settings {
		m[s.name] = s
	}
	return m
}()

// scalar builds a setting holding one value of type T at field(c).
func scalar[T any](name, meta, usage string, field func(*Config) *T, parse func(string) (T, error), format func(T) string, check func(T) error) *setting {
	s := &setting{name: name, meta: meta, usage: usage,
		set: func(c *Config, v string) error {
			t, err := parse(v)
			if err != nil {
				return err
			}
			*field(c) = t
			return nil
		},
		show: func(c *Config) []string { return []string{format(*field(c))} },
	}
	if check != nil {
		s.check = func(c *Config) error { return check(*field(c)) }
	}
	return s
}

// list builds a repeatable setting whose values of type T are appended to
// field(c). Each value is checked as it is parsed, so that an error names the
// line or source of the very value, and again by Validate.
func list[T any](name, meta, usage string, field func(*Config) *[]T, parse func(string) (T, error), format func(T) string, check func(T) error) *setting {
	return &setting{name: name, meta: meta, usage: usage, repeatable: true,
		set: func(c *Config, v string) error {
			t, err := parse(v)
			if err == nil {
				err = check(t)
			}
			if err != nil {
				return err
			}
			*field(c) = append(*field(c), t)
			return nil
		},
		reset: func(c *Config) { *field(c) = nil },
		show: func(c *Config) []string {
			out := make([]string, len(*field(c)))
			for i, t := range *field(c) {
				out[i] = format(t)
			}
			return out
		},
		check: func(c *Config) error {
			for _, t := range *field(c) {
				if err := check(t); err != nil {
					return &itemError{value: format(t), err: err}
				}
			}
			return nil
		},
	}
}

// dcSetting is --mtproto-dc N=ADDR, a map from DC index to address.
func dcSetting() *setting {
	return &setting{name: "mtproto-dc", meta: "N=ADDR", repeatable: true,
		usage: "Telegram DC address override (repeatable; N may be negative for media DCs)",
		set: func(c *Config, v string) error {
			n, addr, err := parseDC(v)
			if err == nil {
				err = checkDC(n, addr)
			}
			if err != nil {
				return err
			}
			if _, dup := c.MTProtoDC[n]; dup {
				return errDuplicateDC
			}
			if c.MTProtoDC == nil {
				c.MTProtoDC = make(map[int]string)
			}
			c.MTProtoDC[n] = addr
			return nil
		},
		reset: func(c *Config) { c.MTProtoDC = nil },
		show: func(c *Config) []string {
			out := make([]string, 0, len(c.MTProtoDC))
			for _, n := range sortedDCs(c.MTProtoDC) {
				out = append(out, formatDC(n, c.MTProtoDC[n]))
			}
			return out
		},
		check: func(c *Config) error {
			for _, n := range sortedDCs(c.MTProtoDC) {
				if err := checkDC(n, c.MTProtoDC[n]); err != nil {
					return &itemError{value: formatDC(n, c.MTProtoDC[n]), err: err}
				}
			}
			return nil
		},
	}
}

func sortedDCs(m map[int]string) []int {
	ns := make([]int, 0, len(m))
	for n := range m {
		ns = append(ns, n)
	}
	slices.Sort(ns)
	return ns
}

func formatDC(n int, addr string) string { return strconv.Itoa(n) + "=" + addr }

func secret(s *setting) *setting  { s.secret = true; return s }
func boolean(s *setting) *setting { s.boolean = true; return s }

func withDefText(s *setting, text string) *setting { s.defText = text; return s }

// checkOptional lets an empty value through check.
func checkOptional(check func(string) error) func(string) error {
	return func(v string) error {
		if v == "" {
			return nil
		}
		return check(v)
	}
}

// checkMailAddress accepts one e-mail address, optionally with a name
// ("Ops <ops@example.org>").
func checkMailAddress(v string) error {
	if _, err := mail.ParseAddress(v); err != nil {
		return errors.New("want an e-mail address such as ops@example.org")
	}
	return nil
}

func checkPort(v int) error {
	if v < 1 || v > 65535 {
		return errors.New("want a port from 1 to 65535")
	}
	return nil
}
