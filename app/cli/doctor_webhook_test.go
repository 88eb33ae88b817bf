package cli

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app/config"
)

// writeCert writes a certificate for host (signed by parent, or by itself
// when parent is nil) and its key to dir, and returns the paths.
func writeCert(t *testing.T, dir, name, host string, isCA bool, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (string, string, *x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: isCA}
	if host != "" {
		tmpl.DNSNames = []string{host}
	}
	signer, signKey := tmpl, key
	if parent != nil {
		signer, signKey = parent, parentKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cp, kp := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	os.WriteFile(cp, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(kp, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	c, _ := x509.ParseCertificate(der)
	return cp, kp, c, key
}

func webhookConfig(t *testing.T, args ...string) *config.Config {
	t.Helper()
	base := []string{"--data", t.TempDir(), "--bot-token", "4242:AAH-doctor-test-token", "--bot-webhook"}
	cfg, err := config.Parse(append(base, args...), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// levelOf is the level of the finding of check whose detail has want.
func levelOf(t *testing.T, fs []finding, check, want string) string {
	t.Helper()
	for _, f := range fs {
		if f.Check == check && strings.Contains(f.Detail, want) {
			return f.Level
		}
	}
	t.Fatalf("no %q finding mentioning %q in %+v", check, want, fs)
	return ""
}

func TestDoctorWebhookMode(t *testing.T) {
	dir := t.TempDir()
	_, _, ca, caKey := writeCert(t, dir, "ca", "", true, nil, nil)
	leafCert, leafKey, _, _ := writeCert(t, dir, "leaf", "bot.example.com", false, ca, caKey)
	selfCert, selfKey, _, _ := writeCert(t, dir, "self", "bot.example.com", false, nil, nil)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	resolved := map[string][]netip.Addr{"bot.example.com": {netip.MustParseAddr("203.0.113.7")},
		"internal.example.com": {netip.MustParseAddr("10.1.2.3")}}
	env := webhookEnv{roots: roots, now: time.Now(), resolve: func(_ context.Context, h string) ([]netip.Addr, error) {
		if a, ok := resolved[h]; ok {
			return a, nil
		}
		return nil, errors.New("no such host")
	}}
	ctx := context.Background()

	// Without --bot-webhook: nothing to say.
	cfg, err := config.Parse([]string{"--data", dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fs := checkWebhook(ctx, cfg, env); len(fs) != 0 {
		t.Fatalf("findings without --bot-webhook: %+v", fs)
	}

	// ACME on :443 with a public name: all good.
	fs := checkWebhook(ctx, webhookConfig(t, "--public-listen", ":443", "--public-host", "bot.example.com"), env)
	for _, f := range fs {
		if f.Level != "ok" {
			t.Fatalf("ACME on 443: %+v", fs)
		}
	}
	levelOf(t, fs, "webhook cert", "ACME")
	levelOf(t, fs, "webhook", "port 443 is one Telegram delivers")

	// A CA-issued certificate on 8443.
	fs = checkWebhook(ctx, webhookConfig(t, "--public-listen", ":8443", "--public-host", "bot.example.com",
		"--tls-cert", leafCert, "--tls-key", leafKey), env)
	if l := levelOf(t, fs, "webhook cert", "CA-issued"); l != "ok" {
		t.Fatalf("CA-issued: %s", l)
	}
	levelOf(t, fs, "webhook", "port 8443")

	// The same certificate, with only the system's roots: not trusted.
	sys := env
	sys.roots = nil
	fs = checkWebhook(ctx, webhookConfig(t, "--public-listen", ":443", "--public-host", "bot.example.com",
		"--tls-cert", leafCert, "--tls-key", leafKey), sys)
	if l := levelOf(t, fs, "webhook cert", "does not verify"); l != "fail" {
		t.Fatalf("untrusted CA: %s", l)
	}

	// Self-signed: Telegram would refuse it.
	fs = checkWebhook(ctx, webhookConfig(t, "--public-listen", ":443", "--public-host", "bot.example.com",
		"--tls-cert", selfCert, "--tls-key", selfKey), env)
	if l := levelOf(t, fs, "webhook cert", "self-signed"); l != "fail" {
		t.Fatalf("self-signed: %s", l)
	}

	// A port Telegram does not post to; ACME's check cannot reach it either.
	fs = checkWebhook(ctx, webhookConfig(t, "--public-listen", ":9443", "--public-host", "bot.example.com"), env)
	if l := levelOf(t, fs, "webhook", "only to ports 443, 80, 88 and 8443"); l != "warn" {
		t.Fatalf("port 9443: %s", l)
	}
	if l := levelOf(t, fs, "webhook cert", "connects to port 443"); l != "warn" {
		t.Fatalf("ACME off 443: %s", l)
	}

	// A loopback listener, a private host, an IP with ACME.
	fs = checkWebhook(ctx, webhookConfig(t, "--public-listen", "127.0.0.1:443", "--public-host", "internal.example.com"), env)
	if l := levelOf(t, fs, "webhook", "not reachable from the internet"); l != "fail" {
		t.Fatalf("loopback listener: %s", l)
	}
	if l := levelOf(t, fs, "webhook", "10.1.2.3"); l != "fail" {
		t.Fatalf("private host: %s", l)
	}
	fs = checkWebhook(ctx, webhookConfig(t, "--public-listen", ":443", "--public-host", "203.0.113.9"), env)
	if l := levelOf(t, fs, "webhook cert", "IP address"); l != "fail" {
		t.Fatalf("ACME for an IP: %s", l)
	}
	fs = checkWebhook(ctx, webhookConfig(t, "--public-listen", ":443", "--public-host", "nowhere.example.com"), env)
	if l := levelOf(t, fs, "webhook", "does not resolve"); l != "warn" {
		t.Fatalf("unresolvable host: %s", l)
	}
}

// `usipipo doctor` runs the webhook checks and fails on a bad setup.
func TestDoctorReportsWebhook(t *testing.T) {
	dir := t.TempDir()
	selfCert, selfKey, _, _ := writeCert(t, dir, "self", "bot.example.com", false, nil, nil)
	data := filepath.Join(t.TempDir(), "data")
	code, out, errs := runCLI(t, nil, "doctor", "--data", data, "--http", "127.0.0.1:0", "--wg-listen", "127.0.0.1:0",
		"--ss-listen", "127.0.0.1:0", "--mtproto-listen", "127.0.0.1:0", "--public-listen", "127.0.0.1:0",
		"--public-host", "203.0.113.9", "--bot-token", "4242:AAH-doctor-test-token", "--bot-webhook",
		"--tls-cert", selfCert, "--tls-key", selfKey)
	if code != 1 || !strings.Contains(out, "self-signed") || !strings.Contains(out, "not reachable from the internet") ||
		!strings.Contains(out, "only to ports 443, 80, 88 and 8443") {
		t.Fatalf("doctor: %d\n%s\n%s", code, out, errs)
	}
	if code, out, _ := runCLI(t, nil, "doctor", "--data", data, "--http", "127.0.0.1:0"); strings.Contains(out, "webhook") {
		t.Fatalf("webhook findings without --bot-webhook: %d\n%s", code, out)
	}
}
