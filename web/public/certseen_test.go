package public

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"testing"
	"time"

	"golang.org/x/crypto/acme"
)

func leafOf(t *testing.T, files CertFiles) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(files.Cert)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCertNotAfterFromFilesAndHandshakes(t *testing.T) {
	files, pool := selfSigned(t, t.TempDir(), "site.test")
	s, err := New(Options{Logger: quiet(), Dynamic: fakeSource{}, Cert: files})
	if err != nil {
		t.Fatal(err)
	}
	want := leafOf(t, files).NotAfter.Truncate(time.Second)
	if got := s.CertNotAfter(); !got.Equal(want) {
		t.Fatalf("CertNotAfter = %v, want the loaded certificate's %v", got, want)
	}
	// A real handshake keeps reporting the served certificate.
	url := serve(t, s)
	do(t, client(pool, "site.test"), "GET", "https://"+url+"/", "")
	if got := s.CertNotAfter(); !got.Equal(want) {
		t.Fatalf("after a handshake CertNotAfter = %v, want %v", got, want)
	}

	// A served certificate is noted; an ACME challenge one is not.
	other, _ := selfSigned(t, t.TempDir(), "other.test")
	oc, err := tls.LoadX509KeyPair(other.Cert, other.Key)
	if err != nil {
		t.Fatal(err)
	}
	oc.Leaf.NotAfter = want.Add(72 * time.Hour) // a distinct expiry to recognise
	seen := &certSeen{}
	get := seen.watch(func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &oc, nil })
	if _, err := get(&tls.ClientHelloInfo{SupportedProtos: []string{acme.ALPNProto}}); err != nil {
		t.Fatal(err)
	}
	if seen.notAfter.Load() != 0 {
		t.Fatal("a TLS-ALPN-01 challenge certificate was taken for the site's")
	}
	if _, err := get(&tls.ClientHelloInfo{SupportedProtos: []string{"http/1.1"}}); err != nil {
		t.Fatal(err)
	}
	if got := seen.notAfter.Load(); got != oc.Leaf.NotAfter.Unix() {
		t.Fatalf("noted %d, want %d", got, oc.Leaf.NotAfter.Unix())
	}
}
