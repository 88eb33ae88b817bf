package app

import (
	"fmt"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/usipipo/usipipo/proxy/mtproto"
)

// ProxySecrets is the kind of MTProto secret the node hands out. A FakeTLS
// ("ee") secret names a cloak domain that clients send as the TLS server
// name, so it needs a DNS name: an IP address there is something no browser
// sends and gives the proxy away. Without one the node hands out padded
// intermediate ("dd") secrets, which the proxy serves as well.
type ProxySecrets struct {
	FakeTLS bool
	// Domain is the cloak domain of FakeTLS secrets; "" with dd secrets.
	Domain string
	// Why says where the choice comes from, for the start-up log and doctor.
	Why string
}

// ChooseProxySecrets decides the kind of secret from --mtproto-domain
// (domain) and --public-host (host). An explicit domain wins; else the
// public host if it is a DNS name; else dd secrets.
func ChooseProxySecrets(domain, host string) ProxySecrets {
	// A domain equal to the host is the host defaulted (config files may
	// repeat it): judged as the host, below.
	if d := normalDomain(domain); domain != "" && domain != host {
		if mtproto.ValidCloakDomain(d) {
			return ProxySecrets{FakeTLS: true, Domain: d, Why: fmt.Sprintf("ee (FakeTLS) MTProto secrets, cloaked as %s (--mtproto-domain)", d)}
		}
		return ProxySecrets{Why: fmt.Sprintf("dd (padded intermediate) MTProto secrets: --mtproto-domain %q is not a DNS name a TLS client would send", domain)}
	}
	if d := normalDomain(host); mtproto.ValidCloakDomain(d) {
		return ProxySecrets{FakeTLS: true, Domain: d, Why: fmt.Sprintf("ee (FakeTLS) MTProto secrets, cloaked as %s (--public-host)", d)}
	}
	what := "--public-host is not set, so links carry this machine's address"
	if _, err := netip.ParseAddr(host); err == nil {
		what = "--public-host " + host + " is an IP address"
	} else if host != "" {
		what = "--public-host " + host + " is not a DNS name a TLS client would send"
	}
	return ProxySecrets{Why: "dd (padded intermediate) MTProto secrets, not ee (FakeTLS): " + what +
		", and a FakeTLS secret must name a domain that clients send as the TLS server name; set --mtproto-domain (or a DNS name as --public-host) for ee secrets"}
}

// normalDomain is a domain as a TLS server name carries it: lower case,
// without the root's trailing dot.
func normalDomain(d string) string { return strings.ToLower(strings.TrimSuffix(d, ".")) }

// Secret is the secret users put in their client for a proxy key.
func (p ProxySecrets) Secret(key []byte) string {
	if p.FakeTLS {
		return mtproto.FakeTLSSecret(key, p.Domain)
	}
	return mtproto.PaddedSecret(key)
}

// Log says at start which secrets links carry and why; dd secrets are a
// warning, as they are easier to tell from HTTPS than FakeTLS.
func (p ProxySecrets) Log(log *slog.Logger) {
	if p.FakeTLS {
		log.Info("mtproto_secrets", "details", p.Why)
		return
	}
	log.Warn("mtproto_secrets", "details", p.Why)
}

// ProxySecrets is the kind of MTProto secret this node's links carry.
func (s *Service) ProxySecrets() ProxySecrets {
	return ChooseProxySecrets(s.ends.CloakDomain, s.ends.PublicHost)
}
