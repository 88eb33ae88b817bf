package public

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// CertFiles name a PEM certificate chain and its private key.
type CertFiles struct {
	Cert, Key string
}

// ACME configures automatic certificates (TLS-ALPN-01).
type ACME struct {
	// CacheDir keeps the account key and certificates (DATA/acme); it is
	// created 0700.
	CacheDir string
	// DirectoryURL is the ACME directory; "" is Let's Encrypt's. Tests
	// point it at a local ACME server.
	DirectoryURL string
	// Email is the optional account contact.
	Email string
}

// certCheckEvery is how often given certificate files are checked for a
// renewal (by modification time), at most, during handshakes.
const certCheckEvery = time.Minute

// tlsConfig is TLS 1.2 or later (1.3 preferred by Go's own negotiation),
// HTTP/1.1 only, from the given files or from ACME.
func tlsConfig(o Options, seen *certSeen) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	if o.Cert != (CertFiles{}) {
		if o.Cert.Cert == "" || o.Cert.Key == "" {
			return nil, errors.New("public: --tls-cert and --tls-key go together")
		}
		fc := &fileCert{files: o.Cert}
		if err := fc.load(); err != nil {
			return nil, err
		}
		fc.mu.Lock()
		seen.note(fc.cert)
		fc.mu.Unlock()
		cfg.GetCertificate = seen.watch(fc.get)
		return cfg, nil
	}
	if o.Host == "" || net.ParseIP(o.Host) != nil {
		return nil, fmt.Errorf("public: ACME needs --public-host to be a DNS name (got %q); or give --tls-cert and --tls-key", o.Host)
	}
	if o.ACME.CacheDir == "" {
		return nil, errors.New("public: ACME needs a cache directory")
	}
	if err := os.MkdirAll(o.ACME.CacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("public: ACME cache: %w", err)
	}
	if err := os.Chmod(o.ACME.CacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("public: ACME cache: %w", err)
	}
	m := &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		HostPolicy: autocert.HostWhitelist(o.Host),
		Cache:      autocert.DirCache(o.ACME.CacheDir),
		Email:      o.ACME.Email,
	}
	if o.ACME.DirectoryURL != "" {
		m.Client = &acme.Client{DirectoryURL: o.ACME.DirectoryURL}
	}
	cfg.GetCertificate = seen.watch(m.GetCertificate)
	// TLS-ALPN-01: the validation connection asks for acme-tls/1, and
	// autocert answers it from GetCertificate; no port 80 is needed.
	cfg.NextProtos = append(cfg.NextProtos, acme.ALPNProto)
	return cfg, nil
}

// fileCert serves a certificate from files and re-reads them when they
// change (an external renewal, e.g. certbot), checking at most once per
// certCheckEvery.
type fileCert struct {
	files CertFiles

	mu      sync.Mutex
	cert    *tls.Certificate
	modTime time.Time
	checked time.Time
}

func (f *fileCert) load() error {
	cert, err := tls.LoadX509KeyPair(f.files.Cert, f.files.Key)
	if err != nil {
		return fmt.Errorf("public: loading --tls-cert/--tls-key: %w", err)
	}
	mt, err := f.mtime()
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.cert, f.modTime, f.checked = &cert, mt, time.Now()
	f.mu.Unlock()
	return nil
}

func (f *fileCert) mtime() (time.Time, error) {
	var latest time.Time
	for _, p := range []string{f.files.Cert, f.files.Key} {
		st, err := os.Stat(p)
		if err != nil {
			return time.Time{}, fmt.Errorf("public: %w", err)
		}
		if st.ModTime().After(latest) {
			latest = st.ModTime()
		}
	}
	return latest, nil
}

func (f *fileCert) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	f.mu.Lock()
	cert, due := f.cert, time.Since(f.checked) >= certCheckEvery
	if due {
		f.checked = time.Now()
	}
	prev := f.modTime
	f.mu.Unlock()
	if due {
		// A failed reload (files half written) keeps the certificate in use.
		if mt, err := f.mtime(); err == nil && !mt.Equal(prev) {
			_ = f.load()
			f.mu.Lock()
			cert = f.cert
			f.mu.Unlock()
		}
	}
	return cert, nil
}

// certSeen remembers the expiry of the certificate the listener last
// served, so /metrics can show it without a handshake or a file read.
type certSeen struct{ notAfter atomic.Int64 } // Unix seconds; 0: none yet

// note records c's leaf expiry; a certificate without a parsable leaf is
// ignored (the last known value stays).
func (cs *certSeen) note(c *tls.Certificate) {
	if c == nil {
		return
	}
	leaf := c.Leaf
	if leaf == nil && len(c.Certificate) > 0 {
		leaf, _ = x509.ParseCertificate(c.Certificate[0])
	}
	if leaf != nil {
		cs.notAfter.Store(leaf.NotAfter.Unix())
	}
}

// watch wraps get so each certificate served for a real handshake is
// noted; TLS-ALPN-01 challenge certificates are not the site's.
func (cs *certSeen) watch(get func(*tls.ClientHelloInfo) (*tls.Certificate, error)) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
		c, err := get(h)
		if err == nil && !slices.Contains(h.SupportedProtos, acme.ALPNProto) {
			cs.note(c)
		}
		return c, err
	}
}
