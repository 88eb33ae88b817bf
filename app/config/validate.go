package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// Validate checks every setting and returns the first problem as an *Error
// naming the setting, its value and where it came from. Checks that touch the
// machine come last: the data directory is created (0700) when missing and
// must be readable and writable, and the files named by --tls-cert,
// --tls-key and --passphrase-file must be readable.
func (c *Config) Validate() error {
	for _, s := range settings {
		if s.check == nil {
			continue
		}
		if err := s.check(c); err != nil {
			return c.settingError(s, err)
		}
	}
	switch {
	case c.TLSCert != "" && c.TLSKey == "":
		return c.settingError(settingByName["tls-cert"], errors.New("--tls-key must be given too"))
	case c.TLSKey != "" && c.TLSCert == "":
		return c.settingError(settingByName["tls-key"], errors.New("--tls-cert must be given too"))
	case c.PublicAPI && c.PublicListen == "":
		return c.settingError(settingByName["public-api"], errors.New("needs --public-listen"))
	case c.BotWebhook && c.BotToken == "":
		return c.settingError(settingByName["bot-webhook"], errors.New("needs --bot-token"))
	case c.BotWebhook && c.PublicListen == "":
		return c.settingError(settingByName["bot-webhook"], errors.New("needs --public-listen (Telegram posts updates to it over HTTPS)"))
	case c.BotWebhook && c.PublicHost == "":
		return c.settingError(settingByName["bot-webhook"], errors.New("needs --public-host (the name in the webhook URL Telegram calls)"))
	}
	if err := checkDataDir(c.Data); err != nil {
		return c.settingError(settingByName["data"], err)
	}
	for _, f := range []struct{ name, path string }{
		{"tls-cert", c.TLSCert}, {"tls-key", c.TLSKey}, {"passphrase-file", c.PassphraseFile},
	} {
		if f.path == "" {
			continue
		}
		if err := checkReadableFile(f.path); err != nil {
			return c.settingError(settingByName[f.name], err)
		}
	}
	return nil
}

func checkListenAddr(v string) error { return checkAddr(v, false) }

// checkAddr checks host:port with a numeric port; the host may be empty
// (all interfaces) unless needHost.
func checkAddr(v string, needHost bool) error {
	if v == "" {
		return errors.New("must not be empty")
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		if ae, ok := errors.AsType[*net.AddrError](err); ok {
			return fmt.Errorf("invalid address: %s", ae.Err)
		}
		return fmt.Errorf("invalid address: %w", err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return errors.New("invalid address: port must be a number from 0 to 65535")
	}
	if host == "" {
		if needHost {
			return errors.New("invalid address: missing host")
		}
		return nil
	}
	if err := checkHost(host); err != nil {
		return fmt.Errorf("invalid address: %w", err)
	}
	return nil
}

// checkHost accepts an IP address (with a zone) or a DNS name.
func checkHost(h string) error {
	if _, err := netip.ParseAddr(h); err == nil {
		return nil
	}
	name := strings.TrimSuffix(h, ".")
	if name == "" || len(name) > 253 {
		return errors.New("invalid host name")
	}
	for label := range strings.SplitSeq(name, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return errors.New("invalid host name")
		}
		for _, r := range label {
			if !isAlnum(r) && r != '-' && r != '_' {
				return errors.New("invalid host name")
			}
		}
	}
	return nil
}

// checkCloakDomain accepts a DNS name fit to be a TLS server name: not an
// IP address, at least two labels, letters, digits and hyphens only.
func checkCloakDomain(d string) error {
	if _, err := netip.ParseAddr(d); err == nil || strings.Trim(d, "0123456789.") == "" {
		return errors.New("want a DNS name: clients send it as the TLS server name, where an IP address gives the proxy away")
	}
	if checkHost(d) != nil || strings.HasSuffix(d, ".") || !strings.Contains(d, ".") || strings.Contains(d, "_") {
		return errors.New("want a DNS name such as www.example.com (letters, digits, hyphens and dots, no trailing dot)")
	}
	return nil
}

func isAlnum(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}

// checkIfaceName accepts what the kernel does: 1 to 15 bytes, no '/',
// whitespace or ':', not "." or "..".
func checkIfaceName(v string) error {
	if v == "" || len(v) > 15 || v == "." || v == ".." || strings.ContainsAny(v, "/: \t\n\"'") {
		return errors.New("want an interface name of 1 to 15 characters without '/', ':', quotes or spaces")
	}
	return nil
}

// Values of --http-tls.
const (
	HTTPTLSOff        = "off"
	HTTPTLSSelfSigned = "self-signed"
	HTTPTLSCert       = "cert"
)

func checkHTTPTLS(v string) error {
	switch v {
	case HTTPTLSOff, HTTPTLSSelfSigned, HTTPTLSCert:
		return nil
	}
	return errors.New("want off, self-signed or cert")
}

func checkWGMode(v string) error {
	switch v {
	case WGModeAuto, WGModeTUN, WGModeNetstack:
		return nil
	}
	return errors.New("want auto, tun or netstack")
}

// checkBotToken accepts what @BotFather hands out: digits, a colon, then
// letters, digits, '-' and '_'. Empty turns the bot off.
func checkBotToken(s Secret) error {
	v := s.Reveal()
	if v == "" {
		return nil
	}
	id, key, ok := strings.Cut(v, ":")
	valid := ok && id != "" && key != ""
	for _, r := range id {
		valid = valid && r >= '0' && r <= '9'
	}
	for _, r := range key {
		valid = valid && (isAlnum(r) || r == '-' || r == '_')
	}
	if !valid {
		return errors.New("not a Telegram bot token (want digits:letters, as @BotFather gives)")
	}
	return nil
}

func checkPrefix(p netip.Prefix) error {
	if !p.IsValid() {
		return errors.New("invalid CIDR")
	}
	if m := p.Masked(); m != p {
		return fmt.Errorf("host bits set (the network is %s)", m)
	}
	return nil
}

func checkPool4(p netip.Prefix) error {
	if err := checkPrefix(p); err != nil {
		return err
	}
	if !p.Addr().Is4() {
		return errors.New("want an IPv4 range")
	}
	if p.Bits() > 30 {
		return errors.New("too small for peers (want /30 or larger)")
	}
	return nil
}

func checkPool6(p netip.Prefix) error {
	if err := checkPrefix(p); err != nil {
		return err
	}
	if !p.Addr().Is6() || p.Addr().Is4In6() {
		return errors.New("want an IPv6 range")
	}
	if p.Bits() > 126 {
		return errors.New("too small for peers (want /126 or larger)")
	}
	return nil
}

// checkDC checks one --mtproto-dc entry: a nonzero index (negative for media
// DCs, above 10000 for test DCs) and a host:port.
func checkDC(n int, addr string) error {
	if n == 0 {
		return errors.New("DC index must not be 0")
	}
	return checkAddr(addr, true)
}

// checkURL accepts an absolute http or https URL with a host.
func checkURL(v string) error {
	if v == "" {
		return errors.New("must not be empty")
	}
	u, err := url.Parse(v)
	if err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return fmt.Errorf("invalid URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return errors.New("invalid URL: want http:// or https://")
	}
	if u.Host == "" {
		return errors.New("invalid URL: missing host")
	}
	if err := checkHost(u.Hostname()); err != nil {
		return fmt.Errorf("invalid URL: %w", err)
	}
	if p := u.Port(); p != "" {
		if _, err := strconv.ParseUint(p, 10, 16); err != nil {
			return errors.New("invalid URL: port must be a number from 0 to 65535")
		}
	}
	return nil
}

func checkLevel(l slog.Level) error {
	for _, known := range levels {
		if l == known {
			return nil
		}
	}
	return errors.New("want debug, info, warn or error")
}

// checkNode accepts 1 to 64 letters, digits, '.', '-' and '_'.
func checkNode(v string) error {
	ok := v != "" && len(v) <= 64
	for _, r := range v {
		ok = ok && (isAlnum(r) || r == '.' || r == '-' || r == '_')
	}
	if !ok {
		return errors.New("want 1 to 64 letters, digits, '.', '-' or '_'")
	}
	return nil
}

func checkTelegramID(id int64) error {
	if id <= 0 {
		return errors.New("telegram ids are positive")
	}
	return nil
}

func checkNonNegative[T ~int | ~int64](v T) error {
	if v < 0 {
		return errors.New("must not be negative")
	}
	return nil
}

func checkPositive(v int) error {
	if v < 1 {
		return errors.New("must be at least 1")
	}
	return nil
}

// checkDataDir creates dir (0700) if missing, then proves it can list it
// and create a file in it.
func checkDataDir(dir string) error {
	if dir == "" {
		return errors.New("must not be empty")
	}
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("cannot create data directory: %w", err)
		}
	case err != nil:
		return fmt.Errorf("cannot use data directory: %w", err)
	case !fi.IsDir():
		return errors.New("not a directory")
	}
	d, err := os.Open(dir)
	if err == nil {
		_, err = d.Readdirnames(1)
		d.Close()
	}
	if err != nil && err != io.EOF {
		return fmt.Errorf("data directory is not readable: %w", err)
	}
	f, err := os.CreateTemp(dir, ".usipipo-write-check-*")
	if err != nil {
		return fmt.Errorf("data directory is not writable: %w", err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// checkReadableFile opens path for reading and reads from it.
func checkReadableFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("cannot read: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		return errors.New("is a directory, want a file")
	}
	if _, err := f.Read(make([]byte, 1)); err != nil && err != io.EOF {
		return fmt.Errorf("cannot read: %w", err)
	}
	return nil
}
