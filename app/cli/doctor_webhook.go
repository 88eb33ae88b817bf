package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/usipipo/usipipo/app/config"
	"github.com/usipipo/usipipo/app/node"
)

// webhookPorts are the only ports Telegram delivers webhooks to.
var webhookPorts = []int{443, 80, 88, 8443}

// webhookEnv is what the webhook checks read from the host; tests replace
// the trust roots (nil: the system's), the clock and the resolver.
type webhookEnv struct {
	roots   *x509.CertPool
	now     time.Time
	resolve func(ctx context.Context, host string) ([]netip.Addr, error)
}

func systemWebhookEnv() webhookEnv {
	return webhookEnv{now: time.Now(), resolve: func(ctx context.Context, host string) ([]netip.Addr, error) {
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	}}
}

// checkWebhook reports whether Telegram can deliver to the webhook that
// --bot-webhook registers at https://PUBLIC_HOST:PORT/tg/webhook: a
// listener on a routable address, a port Telegram posts to, a host that
// resolves to a public address, and a certificate Telegram trusts: from a
// public CA, or self-signed, which the node uploads with setWebhook. Nothing
// without --bot-webhook: the bot polls then.
func checkWebhook(ctx context.Context, cfg *config.Config, env webhookEnv) []finding {
	if !cfg.BotWebhook {
		return nil
	}
	out := []finding{ok("webhook", fmt.Sprintf("--bot-webhook: Telegram posts updates to https://%s/tg/webhook", hostPort(cfg)))}
	out = append(out, webhookListener(cfg)...)
	out = append(out, webhookHost(ctx, cfg, env))
	out = append(out, webhookCert(cfg, env))
	return out
}

func hostPort(cfg *config.Config) string {
	_, port, err := net.SplitHostPort(cfg.PublicListen)
	if err != nil || port == "443" {
		return cfg.PublicHost
	}
	return net.JoinHostPort(cfg.PublicHost, port)
}

// webhookListener: the public listener must take connections from the
// internet, on one of Telegram's ports.
func webhookListener(cfg *config.Config) []finding {
	host, portText, err := net.SplitHostPort(cfg.PublicListen)
	if err != nil {
		return []finding{bad("fail", "webhook", "--public-listen "+cfg.PublicListen+": "+err.Error(), "give HOST:PORT, for example :443")}
	}
	var out []finding
	if ip, perr := netip.ParseAddr(host); (perr == nil && (ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast())) || host == "localhost" {
		out = append(out, bad("fail", "webhook", "--public-listen "+cfg.PublicListen+" is not reachable from the internet, so Telegram cannot post to it",
			"listen on all addresses (--public-listen :443) or on the public one"))
	}
	port, _ := strconv.Atoi(portText)
	for _, p := range webhookPorts {
		if port == p {
			return append(out, ok("webhook", fmt.Sprintf("port %d is one Telegram delivers webhooks to", port)))
		}
	}
	return append(out, bad("warn", "webhook", fmt.Sprintf("Telegram delivers webhooks only to ports 443, 80, 88 and 8443; the public listener is on %d", port),
		"use --public-listen :443 (or :8443), or forward one of those ports to it"))
}

// webhookHost: the name in the URL must lead Telegram to this machine.
func webhookHost(ctx context.Context, cfg *config.Config, env webhookEnv) finding {
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(cfg.PublicHost); err == nil {
		addrs = []netip.Addr{ip}
	} else {
		var rerr error
		if addrs, rerr = env.resolve(ctx, cfg.PublicHost); rerr != nil || len(addrs) == 0 {
			return bad("warn", "webhook", fmt.Sprintf("--public-host %s does not resolve here (%v)", cfg.PublicHost, rerr),
				"point an A/AAAA record at this server")
		}
	}
	for _, a := range addrs {
		a = a.Unmap()
		if a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsUnspecified() || netip.MustParsePrefix("100.64.0.0/10").Contains(a) {
			return bad("fail", "webhook", fmt.Sprintf("--public-host %s is %s, which Telegram cannot reach", cfg.PublicHost, a),
				"use the server's public name or address")
		}
	}
	return ok("webhook", fmt.Sprintf("--public-host %s is %v", cfg.PublicHost, addrs))
}

// webhookCert: which certificate the listener will present, and whether
// Telegram accepts it.
func webhookCert(cfg *config.Config, env webhookEnv) finding {
	if cfg.TLSCert == "" {
		if _, err := netip.ParseAddr(cfg.PublicHost); err == nil {
			return bad("fail", "webhook cert", "ACME cannot issue a certificate for an IP address ("+cfg.PublicHost+")",
				"use a DNS name as --public-host, or give a CA-issued certificate with --tls-cert/--tls-key")
		}
		cached := ""
		if _, err := os.Stat(filepath.Join(cfg.Data, "acme", cfg.PublicHost)); err == nil {
			cached = "; a certificate is already cached"
		}
		detail := "ACME (Let's Encrypt, TLS-ALPN-01) certificate for " + cfg.PublicHost + ": trusted by Telegram" + cached
		if _, port, _ := net.SplitHostPort(cfg.PublicListen); port != "443" && cached == "" {
			return bad("warn", "webhook cert", detail+", but the ACME check connects to port 443 and the listener is on "+port,
				"forward port 443 to the public listener, or give a certificate with --tls-cert/--tls-key")
		}
		return ok("webhook cert", detail)
	}
	pair, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return bad("fail", "webhook cert", "--tls-cert/--tls-key: "+err.Error(), "give a PEM certificate chain and its key")
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return bad("fail", "webhook cert", "--tls-cert: "+err.Error(), "give a PEM certificate chain and its key")
	}
	inter := x509.NewCertPool()
	for _, der := range pair.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(c)
		}
	}
	_, err = leaf.Verify(x509.VerifyOptions{DNSName: cfg.PublicHost, Roots: env.roots, Intermediates: inter, CurrentTime: env.now})
	if err != nil && node.SelfSigned(leaf) {
		return selfSignedWebhookCert(cfg.PublicHost, leaf, env.now)
	}
	if err != nil {
		return bad("fail", "webhook cert", "--tls-cert does not verify for "+cfg.PublicHost+": "+err.Error(),
			"give the full chain of a certificate from a public CA that names "+cfg.PublicHost+", or a self-signed one")
	}
	return ok("webhook cert", fmt.Sprintf("CA-issued certificate for %s from %s, valid until %s", cfg.PublicHost, leaf.Issuer.CommonName, leaf.NotAfter.Format(time.DateOnly)))
}

// selfSignedWebhookCert: the node uploads a self-signed certificate with
// setWebhook, and Telegram then trusts it if it names the host in the
// webhook URL (Telegram's guide asks for it as the CN; a subjectAltName
// does as well) and is in date.
func selfSignedWebhookCert(host string, leaf *x509.Certificate, now time.Time) finding {
	if leaf.VerifyHostname(host) != nil && !strings.EqualFold(leaf.Subject.CommonName, strings.TrimSuffix(host, ".")) {
		return bad("fail", "webhook cert", fmt.Sprintf("--tls-cert is self-signed for %q, not for %s: Telegram refuses it even uploaded", leaf.Subject.CommonName, host),
			"make it for the public host: openssl req -newkey rsa:2048 -sha256 -nodes -x509 -days 365 -keyout key.pem -out cert.pem -subj /CN="+host+" -addext subjectAltName="+sanFor(host))
	}
	if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return bad("fail", "webhook cert", fmt.Sprintf("--tls-cert is self-signed and valid from %s to %s, not now", leaf.NotBefore.Format(time.DateOnly), leaf.NotAfter.Format(time.DateOnly)),
			"make a new one (and the node uploads it again)")
	}
	return ok("webhook cert", fmt.Sprintf("self-signed certificate for %s, valid until %s: the node uploads it with setWebhook (again after a renewal), so Telegram trusts it",
		host, leaf.NotAfter.Format(time.DateOnly)))
}

// sanFor is openssl's subjectAltName value for host: IP:… or DNS:….
func sanFor(host string) string {
	if _, err := netip.ParseAddr(host); err == nil {
		return "IP:" + host
	}
	return "DNS:" + host
}
