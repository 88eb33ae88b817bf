package node

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app/config"
)

// The self-signed certificate is kept in the data dir (0600), so its
// fingerprint survives a restart; it is replaced when it nears expiry.
func TestHTTPTLSSelfSignedIsStable(t *testing.T) {
	data := t.TempDir()
	cfg := &config.Config{Data: data, HTTPTLS: config.HTTPTLSSelfSigned, Node: "n1", HTTP: "192.0.2.10:8080", PublicHost: "vpn.example.net"}
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	c1, fp1, err := httpTLS(cfg, now)
	if err != nil {
		t.Fatal(err)
	}
	if c1.MinVersion != 0x0304 || len(fp1) != 64 {
		t.Fatalf("min version %x, fingerprint %q", c1.MinVersion, fp1)
	}
	leaf := c1.Certificates[0].Leaf
	if err := leaf.VerifyHostname("vpn.example.net"); err != nil {
		t.Errorf("public host: %v", err)
	}
	if err := leaf.VerifyHostname("192.0.2.10"); err != nil {
		t.Errorf("bound address: %v", err)
	}
	st, err := os.Stat(filepath.Join(data, selfSignedFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("stored certificate: %v %v", err, st.Mode())
	}
	if _, fp2, err := httpTLS(cfg, now.Add(24*time.Hour)); err != nil || fp2 != fp1 {
		t.Fatalf("after a restart: %q, %v; want %q", fp2, err, fp1)
	}
	if _, fp3, err := httpTLS(cfg, now.Add(selfSignedLife)); err != nil || fp3 == fp1 {
		t.Fatalf("an expiring certificate was kept: %v", err)
	}
}

func TestHTTPTLSModes(t *testing.T) {
	if c, fp, err := httpTLS(&config.Config{HTTPTLS: config.HTTPTLSOff}, time.Now()); c != nil || fp != "" || err != nil {
		t.Fatalf("off: %v %q %v", c, fp, err)
	}
	if _, _, err := httpTLS(&config.Config{HTTPTLS: config.HTTPTLSCert}, time.Now()); err == nil {
		t.Fatal("cert mode without files")
	}
	// A certificate given as files: reuse a self-signed one written above.
	data := t.TempDir()
	if _, _, err := httpTLS(&config.Config{Data: data, HTTPTLS: config.HTTPTLSSelfSigned}, time.Now()); err != nil {
		t.Fatal(err)
	}
	pem := filepath.Join(data, selfSignedFile)
	c, fp, err := httpTLS(&config.Config{HTTPTLS: config.HTTPTLSCert, TLSCert: pem, TLSKey: pem}, time.Now())
	if err != nil || c == nil || len(fp) != 64 {
		t.Fatalf("cert mode: %v", err)
	}
	if _, _, err := httpTLS(&config.Config{HTTPTLS: config.HTTPTLSCert, TLSCert: pem, TLSKey: filepath.Join(data, "missing")}, time.Now()); err == nil {
		t.Fatal("a missing key file was accepted")
	}
}

func TestExposedWithoutTLS(t *testing.T) {
	for _, tc := range []struct {
		addr string
		tls  bool
		want bool
	}{
		{"127.0.0.1:8080", false, false}, {"[::1]:8080", false, false}, {"0.0.0.0:8080", false, true},
		{"192.0.2.1:8080", false, true}, {"[::]:8080", false, true}, {"0.0.0.0:8080", true, false},
	} {
		a, err := net.ResolveTCPAddr("tcp", tc.addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := exposedWithoutTLS(a, tc.tls); got != tc.want {
			t.Errorf("%s tls=%v: %v, want %v", tc.addr, tc.tls, got, tc.want)
		}
	}
}
