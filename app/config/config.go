package config

import (
	"log/slog"
	"net/netip"
	"os"
	"time"
)

// WireGuard modes accepted by --wg-mode.
const (
	WGModeAuto     = "auto"     // tun when the node may create one, else netstack
	WGModeTUN      = "tun"      // a kernel tun device (needs CAP_NET_ADMIN)
	WGModeNetstack = "netstack" // a userspace network stack, no privileges
)

// Config is a node's settings. Parse fills it from flags, environment and
// file; Default gives the built-in values. Each field's comment names its flag.
type Config struct {
	File string // --config: the settings file that was read, "" if none

	Data          string // --data: data directory
	HTTP          string // --http: API, panel and /metrics listen address
	HTTPTLS       string // --http-tls: HTTPTLSOff, HTTPTLSSelfSigned or HTTPTLSCert
	WGListen      string // --wg-listen: WireGuard UDP listen address
	WGMode        string // --wg-mode: WGModeAuto, WGModeTUN or WGModeNetstack
	WGIface       string // --wg-iface: the kernel interface of tun mode
	SSListen      string // --ss-listen: Shadowsocks TCP+UDP listen address
	MTProtoListen string // --mtproto-listen: MTProto proxy listen address
	BotToken      Secret // --bot-token: Telegram bot token; empty turns the bot off
	PublicHost    string // --public-host: host or IP clients connect to; empty = derive
	PublicListen  string // --public-listen: public HTTPS listener; empty = off
	PublicAPI     bool   // --public-api: also serve /api on the public listener
	BotWebhook    bool   // --bot-webhook: Telegram updates by webhook on --public-listen, not polling
	OutlineAPI    string // --outline-api: Outline Manager API listen address; empty = off

	EgressAllow []netip.Prefix // --egress-allow: ranges tunnelled traffic may reach
	EgressDeny  []netip.Prefix // --egress-deny: ranges tunnelled traffic may not reach

	BotAPIURL     string         // --bot-api-url: Telegram Bot API base URL
	MTProtoDC     map[int]string // --mtproto-dc: Telegram DC index → host:port overrides
	MTProtoFast   bool           // --mtproto-fast: DC→client bytes without re-encryption
	MTProtoDomain string         // --mtproto-domain: FakeTLS cloak domain; empty = --public-host if a DNS name
	ShadowmereURL string         // --shadowmere-url: proxy list source; empty = off
	QvaPayURL     string         // --qvapay-url: QvaPay API base URL

	TLSCert        string // --tls-cert: certificate file for the public listener
	TLSKey         string // --tls-key: its private key file
	PassphraseFile string // --passphrase-file: backup passphrase file

	LogLevel slog.Level // --log-level: debug, info, warn or error
	Node     string     // --node: this node's name
	AdminIDs []int64    // --admin-id: Telegram ids of the admins

	AdminEmails  []string // --admin-email: e-mail addresses of the admins
	SMTPHost     string   // --smtp-host: SMTP relay for e-mail notifications; empty = none
	SMTPPort     int      // --smtp-port: its port
	SMTPUser     string   // --smtp-user: SMTP login; empty = no authentication
	SMTPPassword Secret   // --smtp-password: SMTP password
	SMTPFrom     string   // --smtp-from: sender address of notifications

	BackupEvery time.Duration // --backup-every: scheduled backup interval; 0 = off
	BackupKeep  int           // --backup-keep: scheduled backups kept
	CacheMB     int           // --cache-mb: cache size in MiB; 0 = off

	WGV4Pool netip.Prefix // --wg-v4-pool: IPv4 addresses given to WireGuard peers
	WGV6Pool netip.Prefix // --wg-v6-pool: IPv6 addresses given to WireGuard peers

	// sources maps a setting name to where its value came from, as Parse
	// found it; a name that is absent has its default.
	sources map[string]string
}

// Default returns a Config with every setting at its built-in value.
func Default() *Config {
	return &Config{
		Data:          "./data",
		HTTP:          "127.0.0.1:8080",
		HTTPTLS:       HTTPTLSOff,
		WGListen:      ":51820",
		WGMode:        WGModeAuto,
		WGIface:       "usipipo0",
		SSListen:      ":8388",
		MTProtoListen: ":8443",
		BotAPIURL:     "https://api.telegram.org",
		QvaPayURL:     "https://qvapay.com/api",
		LogLevel:      slog.LevelInfo,
		Node:          hostname(),
		BackupEvery:   24 * time.Hour,
		BackupKeep:    7,
		SMTPPort:      587,
		CacheMB:       64,
		WGV4Pool:      netip.MustParsePrefix("10.66.0.0/16"),
		WGV6Pool:      netip.MustParsePrefix("fd66::/64"),
	}
}

// hostname is the default node name.
func hostname() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "usipipo"
}

// Source tells where setting name (a flag name without dashes, e.g.
// "wg-listen") got its value: "command line", an environment variable such
// as "USIPIPO_WG_LISTEN", "FILE:LINE", or "default".
func (c *Config) Source(name string) string {
	if s, ok := c.sources[name]; ok {
		return s
	}
	return sourceDefault
}

// Where a value came from, besides environment variables and file lines.
const (
	sourceFlag    = "command line"
	sourceDefault = "default"
)
