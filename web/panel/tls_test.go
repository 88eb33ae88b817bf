package panel_test

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// With --http-tls self-signed the node serves the API and the panel over
// TLS 1.3 only, logs the certificate's SHA-256, and the panel's cookie
// becomes __Host- and Secure.
func TestNodeServesThePanelOverTLS(t *testing.T) {
	n, _, logs := startNode(t, "--http-tls", "self-signed")
	m := regexp.MustCompile(`certificate SHA-256 ([0-9a-f]{64})`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no fingerprint in the log:\n%s", logs.String())
	}
	var seen string
	cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true, // pinned below, as an operator pins the logged fingerprint
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			sum := sha256.Sum256(raw[0])
			seen = hex.EncodeToString(sum[:])
			if seen != m[1] {
				return fmt.Errorf("certificate %s, logged %s", seen, m[1])
			}
			return nil
		}}}}
	resp, err := cl.Get("https://" + n.HTTPAddr.String() + "/login")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil || resp.TLS.Version != tls.VersionTLS13 {
		t.Fatalf("GET /login: %d %+v", resp.StatusCode, resp.TLS)
	}
	if c := resp.Header.Get("Set-Cookie"); !strings.HasPrefix(c, "__Host-") || !strings.Contains(c, "secure") {
		t.Fatalf("cookie over TLS: %q", c)
	}
	if resp.Header.Get("Strict-Transport-Security") == "" {
		t.Fatal("no HSTS over TLS")
	}
	// TLS 1.2 is refused, and so is plain HTTP.
	conn, err := tls.Dial("tcp", n.HTTPAddr.String(), &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12})
	if err == nil {
		conn.Close()
		t.Fatal("a TLS 1.2 handshake succeeded")
	}
	if r, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + n.HTTPAddr.String() + "/healthz"); err == nil {
		r.Body.Close()
		if r.StatusCode == 200 {
			t.Fatal("plain HTTP answered on a TLS listener")
		}
	}
	if strings.Contains(logs.String(), "http_exposed_without_tls") {
		t.Fatal("warned about a loopback TLS listener")
	}
}

// Plain HTTP on a non-loopback address works but is warned about, in the
// log and on every panel page.
func TestExposedPanelWithoutTLSWarns(t *testing.T) {
	n, _, logs := startNode(t, "--http", "0.0.0.0:0")
	if !strings.Contains(logs.String(), `"http_exposed_without_tls"`) {
		t.Fatalf("no warning in the log:\n%s", logs.String())
	}
	_, port, _ := net.SplitHostPort(n.HTTPAddr.String())
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://127.0.0.1:" + port + "/login")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(b), `id="warning"`) || !strings.Contains(string(b), "without TLS") {
		t.Fatalf("no banner on the login page: %.600s", b)
	}
}
