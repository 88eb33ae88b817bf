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

	// Self-signed: the node uploads it, so Telegram trusts it, when it names
	// the host (as a subjectAltName, or as the CN Telegram's guide makes,
	// here for an IP address) and is in date.
	fs = checkWebhook(ctx, webhookConfig(t, "--public-listen", ":443", "--public-host", "bot.example.com",
		"--tls-cert", selfCert, "--tls-key", selfKey), env)
	if l := levelOf(t, fs, "webhook cert", "the node uploads it with setWebhook"); l != "ok" {
		t.Fatalf("self-signed: %s", l)
	}
	ipCert, ipKey, _, _ := writeCert(t, dir, "203.0.113.9", "", false, nil, nil)
	fs = checkWebhook(ctx, webhookConfig(t, "--public-listen", ":443", "--public-host", "203.0.113.9",
		"--tls-cert", ipCert, "--tls-key", ipKey), env)
	if l := levelOf(t, fs, "webhook cert", "self-signed certificate for 203.0.113.9"); l != "ok" {
		t.Fatalf("self-signed for an IP: %s", l)
	}
	fs = checkWebhook(ctx, webhookConfig(t, "--public-listen", ":443", "--public-host", "other.example.com",
		"--tls-cert", selfCert, "--tls-key", selfKey), env)
	if l := levelOf(t, fs, "webhook cert", "not for other.example.com"); l != "fail" {
		t.Fatalf("self-signed for another host: %s", l)
	}
	later := env
	later.now = time.Now().Add(100 * 24 * time.Hour)
	fs = checkWebhook(ctx, webhookConfig(t, "--public-listen", ":443", "--public-host", "bot.example.com",
		"--tls-cert", selfCert, "--tls-key", selfKey), later)
	if l := levelOf(t, fs, "webhook cert", "not now"); l != "fail" {
		t.Fatalf("expired self-signed: %s", l)
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

// doctor says which MTProto secrets links carry: dd, a warning, when no
// DNS name is at hand to cloak FakeTLS as; ee otherwise.
func TestDoctorMTProtoSecrets(t *testing.T) {
	for _, tc := range []struct {
		args        []string
		level, want string
	}{
		{[]string{"--public-host", "203.0.113.9"}, "warn", "--public-host 203.0.113.9 is an IP address"},
		{nil, "warn", "--public-host is not set"},
		{[]string{"--public-host", "vpn.example.com"}, "ok", "ee (FakeTLS) MTProto secrets, cloaked as vpn.example.com (--public-host"},
		{[]string{"--public-host", "203.0.113.9", "--mtproto-domain", "www.example.org"}, "ok", "cloaked as www.example.org (--mtproto-domain)"},
	} {
		cfg, err := config.Parse(append([]string{"--data", t.TempDir()}, tc.args...), nil)
		if err != nil {
			t.Fatal(err)
		}
		f := checkMTProtoSecrets(cfg)
		if f.Check != "mtproto" || f.Level != tc.level || !strings.Contains(f.Detail, tc.want) || (f.Level != "ok") != (f.Fix != "") {
			t.Errorf("%v: %+v, want %s mentioning %q", tc.args, f, tc.level, tc.want)
		}
	}
	data := filepath.Join(t.TempDir(), "data")
	_, out, errs := runCLI(t, nil, "doctor", "--data", data, "--http", "127.0.0.1:0", "--wg-listen", "127.0.0.1:0",
		"--ss-listen", "127.0.0.1:0", "--mtproto-listen", "127.0.0.1:0", "--public-host", "203.0.113.9")
	if !strings.Contains(out, "WARN  mtproto") || !strings.Contains(out, "dd (padded intermediate)") || !strings.Contains(out, "--mtproto-domain") {
		t.Fatalf("doctor:\n%s\n%s", out, errs)
	}
}
