package node

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/usipipo/usipipo/app/config"
	"github.com/usipipo/usipipo/app/logging"
	"github.com/usipipo/usipipo/web"
	"github.com/usipipo/usipipo/web/panel"
)

// selfSignedFile keeps the --http-tls self-signed certificate and its key
// (0600), so its fingerprint, which operators pin, survives restarts.
const selfSignedFile = "http-tls.pem"

// selfSignedLife is how long a self-signed certificate is made for; an
// expired one is replaced at start.
const selfSignedLife = 2 * 365 * 24 * time.Hour

// httpTLS returns the --http listener's TLS configuration (TLS 1.3 only),
// nil when --http-tls is off, with the certificate's SHA-256 fingerprint.
func httpTLS(cfg *config.Config, now time.Time) (*tls.Config, string, error) {
	var cert tls.Certificate
	var err error
	switch cfg.HTTPTLS {
	case config.HTTPTLSOff, "":
		return nil, "", nil
	case config.HTTPTLSCert:
		if cfg.TLSCert == "" || cfg.TLSKey == "" {
			return nil, "", errors.New("--http-tls cert needs --tls-cert and --tls-key")
		}
		cert, err = tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
	case config.HTTPTLSSelfSigned:
		cert, err = selfSigned(filepath.Join(cfg.Data, selfSignedFile), cfg, now)
	default:
		return nil, "", fmt.Errorf("--http-tls %q: want off, self-signed or cert", cfg.HTTPTLS)
	}
	if err != nil {
		return nil, "", fmt.Errorf("--http-tls certificate: %w", err)
	}
	sum := sha256.Sum256(cert.Certificate[0])
	return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}}, hex.EncodeToString(sum[:]), nil
}

// selfSigned loads the stored self-signed certificate, or makes (and
// stores) a new one when there is none or it expires within a day.
func selfSigned(path string, cfg *config.Config, now time.Time) (tls.Certificate, error) {
	if b, err := os.ReadFile(path); err == nil {
		if c, err := tls.X509KeyPair(b, b); err == nil && c.Leaf != nil && now.Add(24*time.Hour).Before(c.Leaf.NotAfter) {
			return c, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return tls.Certificate{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "usipipo " + cfg.Node},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(selfSignedLife),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}}
	for _, h := range []string{cfg.PublicHost, cfg.Node, hostOf(cfg.HTTP)} {
		if ip := net.ParseIP(h); ip != nil && !ip.IsUnspecified() {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" && ip == nil {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	kd, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return tls.Certificate{}, err
	}
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	b = append(b, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})...)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(b, b)
}

func hostOf(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return h
}

// exposedWithoutTLS reports whether a bound --http address is reachable
// from other machines while it speaks plain HTTP.
func exposedWithoutTLS(addr net.Addr, tlsOn bool) bool {
	if tlsOn {
		return false
	}
	tcp, ok := addr.(*net.TCPAddr)
	return ok && !tcp.IP.IsLoopback()
}

// mountPanel mounts the web panel and, with --http-tls, wraps the --http
// listener in TLS 1.3. Plain HTTP on a non-loopback address is allowed but
// warned about in the log and on every panel page.
func (n *Node) mountPanel(srv *web.Server, ln net.Listener) (net.Listener, error) {
	tcfg, fp, err := httpTLS(n.Config, time.Now())
	if err != nil {
		ln.Close()
		return nil, err
	}
	var warning string
	if tcfg != nil {
		n.Log.Info("http_tls", "details", "TLS 1.3 on --http ("+n.Config.HTTPTLS+"), certificate SHA-256 "+fp)
		ln = tls.NewListener(ln, tcfg)
		n.noteFixedCert(certHTTP, tcfg.Certificates[0])
	} else if exposedWithoutTLS(ln.Addr(), false) {
		warning = "Warning: this panel listens on " + ln.Addr().String() +
			" without TLS: passwords and sessions cross the network in clear. Use --http-tls, or bind --http to 127.0.0.1 and use an SSH tunnel."
		n.Log.Warn("http_exposed_without_tls", "details", warning)
	}
	err = panel.Mount(srv.App(), panel.Options{Service: n.Service, Payments: n.Pay, Notifier: n.Notify, Status: n.Status, TLS: tcfg != nil, Warning: warning,
		Logger: logging.ForService(n.Log, "panel"), Logins: n.logins})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("mounting the panel: %w", err)
	}
	return ln, nil
}
