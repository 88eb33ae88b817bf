package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Conversions from a source's text to a setting's type. Their errors say
// what is wrong without repeating the value: Error adds it.

func parseString(v string) (string, error) { return v, nil }
func parseSecret(v string) (Secret, error) { return Secret(v), nil }
func showString(v string) string           { return v }

func parseBool(v string) (bool, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, errors.New("want true or false")
	}
	return b, nil
}

func parseInt(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, errors.New("want a whole number")
	}
	return n, nil
}

func parseInt64(v string) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, errors.New("want a whole number")
	}
	return n, nil
}

func showInt64(n int64) string { return strconv.FormatInt(n, 10) }

func parseDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, errors.New("invalid duration (want e.g. 24h, 90m or 0)")
	}
	return d, nil
}

// showDuration drops zero minutes and seconds: "24h", not "24h0m0s".
func showDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

var levels = map[string]slog.Level{
	"debug": slog.LevelDebug,
	"info":  slog.LevelInfo,
	"warn":  slog.LevelWarn,
	"error": slog.LevelError,
}

func parseLevel(v string) (slog.Level, error) {
	l, ok := levels[strings.ToLower(v)]
	if !ok {
		return 0, errors.New("want debug, info, warn or error")
	}
	return l, nil
}

func showLevel(l slog.Level) string { return strings.ToLower(l.String()) }

// parsePrefix reads a CIDR; a bare IP stands for itself alone (/32, /128).
func parsePrefix(v string) (netip.Prefix, error) {
	if !strings.Contains(v, "/") {
		a, err := netip.ParseAddr(v)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, errors.New("invalid CIDR or IP (want e.g. 10.0.0.0/8, 2001:db8::/32 or 192.0.2.7)")
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(v)
	if err != nil {
		return netip.Prefix{}, errors.New("invalid CIDR (want e.g. 10.0.0.0/8 or 2001:db8::/32)")
	}
	return p, nil
}

// parseDC reads N=ADDR of --mtproto-dc; checkDC judges the parts.
func parseDC(v string) (int, string, error) {
	ns, addr, ok := strings.Cut(v, "=")
	if !ok {
		return 0, "", errors.New("want N=ADDR, e.g. 2=149.154.167.51:443")
	}
	n, err := strconv.Atoi(ns)
	if err != nil {
		return 0, "", fmt.Errorf("DC index %q is not a whole number", ns)
	}
	return n, addr, nil
}

// showURL hides a password in a URL's user info.
func showURL(v string) string {
	if u, err := url.Parse(v); err == nil && u.User != nil {
		return u.Redacted()
	}
	return v
}

func joinValues(vs []string) string { return strings.Join(vs, ",") }
