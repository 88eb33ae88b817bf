package public

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeACME is a small RFC 8555 server: enough of Let's Encrypt for
// autocert to register, order, prove the name with TLS-ALPN-01 (which the
// fake checks by connecting to the node as a validator does) and download
// a certificate signed by its own CA. It does not check JWS signatures.
type fakeACME struct {
	t      *testing.T
	srv    *httptest.Server
	domain string
	target string // where the validator connects: the node's listener
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey

	mu         sync.Mutex
	thumbprint string // of the account key
	token      string
	validated  bool
	cert       []byte // issued chain, PEM
	validation error
}

func newFakeACME(t *testing.T, domain string) *fakeACME {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fake ACME CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	tok := make([]byte, 16)
	rand.Read(tok)
	f := &fakeACME{t: t, domain: domain, ca: ca, caKey: key, token: base64.RawURLEncoding.EncodeToString(tok)}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeACME) url(p string) string { return f.srv.URL + p }

// jws is a request body; only the protected header and payload are read.
type jws struct {
	Protected, Payload string
}

func (f *fakeACME) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Replay-Nonce", fmt.Sprint(time.Now().UnixNano()))
	if r.URL.Path == "/directory" {
		json.NewEncoder(w).Encode(map[string]string{"newNonce": f.url("/nonce"), "newAccount": f.url("/account"),
			"newOrder": f.url("/order"), "revokeCert": f.url("/revoke"), "keyChange": f.url("/keychange")})
		return
	}
	if r.URL.Path == "/nonce" {
		return
	}
	var req jws
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, "not a JWS", 400)
		return
	}
	payload, _ := base64.RawURLEncoding.DecodeString(req.Payload)
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/account":
		var hdr struct {
			JWK json.RawMessage `json:"jwk"`
		}
		p, _ := base64.RawURLEncoding.DecodeString(req.Protected)
		json.Unmarshal(p, &hdr)
		f.mu.Lock()
		if len(hdr.JWK) > 0 {
			f.thumbprint = thumbprint(hdr.JWK)
		}
		f.mu.Unlock()
		w.Header().Set("Location", f.url("/acct/1"))
		w.WriteHeader(201)
		json.NewEncoder(w).Encode(map[string]any{"status": "valid"})
	case "/order":
		w.Header().Set("Location", f.url("/order/1"))
		w.WriteHeader(201)
		f.writeOrder(w)
	case "/order/1":
		f.writeOrder(w)
	case "/authz/1":
		f.mu.Lock()
		st := "pending"
		if f.validated {
			st = "valid"
		}
		f.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"status": st, "identifier": map[string]string{"type": "dns", "value": f.domain},
			"challenges": []map[string]string{{"type": "tls-alpn-01", "url": f.url("/chal/1"), "token": f.token, "status": st}}})
	case "/chal/1":
		if err := f.validate(); err != nil {
			f.mu.Lock()
			f.validation = err
			f.mu.Unlock()
			w.WriteHeader(403)
			json.NewEncoder(w).Encode(map[string]string{"type": "urn:ietf:params:acme:error:unauthorized", "detail": err.Error()})
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"type": "tls-alpn-01", "url": f.url("/chal/1"), "token": f.token, "status": "valid"})
	case "/finalize":
		var body struct {
			CSR string `json:"csr"`
		}
		json.Unmarshal(payload, &body)
		if err := f.issue(body.CSR); err != nil {
			w.WriteHeader(400)
			json.NewEncoder(w).Encode(map[string]string{"type": "urn:ietf:params:acme:error:badCSR", "detail": err.Error()})
			return
		}
		f.writeOrder(w)
	case "/cert/1":
		f.mu.Lock()
		chain := f.cert
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/pem-certificate-chain")
		w.Write(chain)
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeACME) writeOrder(w http.ResponseWriter) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o := map[string]any{"status": "pending", "identifiers": []map[string]string{{"type": "dns", "value": f.domain}},
		"authorizations": []string{f.url("/authz/1")}, "finalize": f.url("/finalize")}
	switch {
	case f.cert != nil:
		o["status"], o["certificate"] = "valid", f.url("/cert/1")
	case f.validated:
		o["status"] = "ready"
	}
	json.NewEncoder(w).Encode(o)
}

// idPeAcmeIdentifier is the certificate extension of a TLS-ALPN-01 answer
// (RFC 8737).
var idPeAcmeIdentifier = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 31}

// validate connects to the node as an ACME validator does: SNI the domain,
// ALPN acme-tls/1, and a self-signed answer carrying SHA-256 of the key
// authorization.
func (f *fakeACME) validate() error {
	c, err := tls.Dial("tcp", f.target, &tls.Config{ServerName: f.domain, NextProtos: []string{"acme-tls/1"},
		InsecureSkipVerify: true}) // the answer is self-signed by design
	if err != nil {
		return fmt.Errorf("validator: %w", err)
	}
	defer c.Close()
	st := c.ConnectionState()
	if st.NegotiatedProtocol != "acme-tls/1" {
		return fmt.Errorf("validator: ALPN %q", st.NegotiatedProtocol)
	}
	f.mu.Lock()
	want := sha256.Sum256([]byte(f.token + "." + f.thumbprint))
	f.mu.Unlock()
	for _, ext := range st.PeerCertificates[0].Extensions {
		var got []byte
		if ext.Id.Equal(idPeAcmeIdentifier) {
			if _, err := asn1.Unmarshal(ext.Value, &got); err == nil && string(got) == string(want[:]) {
				f.mu.Lock()
				f.validated = true
				f.mu.Unlock()
				return nil
			}
		}
	}
	return fmt.Errorf("validator: no matching acmeIdentifier")
}

func (f *fakeACME) issue(csrB64 string) error {
	der, err := base64.RawURLEncoding.DecodeString(csrB64)
	if err != nil {
		return err
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.validated {
		return fmt.Errorf("order not ready")
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: f.domain}, DNSNames: csr.DNSNames,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leaf, err := x509.CreateCertificate(rand.Reader, tmpl, f.ca, csr.PublicKey, f.caKey)
	if err != nil {
		return err
	}
	f.cert = append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.ca.Raw})...)
	return nil
}

// thumbprint is RFC 7638's JWK thumbprint of an EC or RSA key.
func thumbprint(jwk json.RawMessage) string {
	var k map[string]string
	json.Unmarshal(jwk, &k)
	var canon string
	if k["kty"] == "EC" {
		canon = fmt.Sprintf(`{"crv":%q,"kty":"EC","x":%q,"y":%q}`, k["crv"], k["x"], k["y"])
	} else {
		canon = fmt.Sprintf(`{"e":%q,"kty":"RSA","n":%q}`, k["e"], k["n"])
	}
	sum := sha256.Sum256([]byte(canon))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// ACME end to end against the fake CA: the first visitor's handshake gets
// a certificate issued through TLS-ALPN-01 on the listener itself (no port
// 80), kept in the 0700 cache directory, and served from it afterwards.
func TestACMEIssuesThroughTLSALPN(t *testing.T) {
	const domain = "vpn.example.net"
	acme := newFakeACME(t, domain)
	dir := t.TempDir() + "/acme"
	s, err := New(Options{Logger: quiet(), Dynamic: fakeSource{}, Host: domain,
		ACME: ACME{CacheDir: dir, DirectoryURL: acme.url("/directory")}})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, s)
	acme.target = addr
	pool := x509.NewCertPool()
	pool.AddCert(acme.ca)
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: domain}}}
	a := do(t, c, "GET", "https://"+addr+"/", "")
	if a.code != 200 || !strings.Contains(a.body, domain) {
		acme.mu.Lock()
		defer acme.mu.Unlock()
		t.Fatalf("landing over the ACME certificate: %+v (validation: %v)", a, acme.validation)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		t.Fatalf("ACME cache is empty: %v", err)
	}
	for _, e := range entries {
		if e.Name() == domain {
			return
		}
	}
	t.Fatalf("no certificate for %s in the cache: %v", domain, entries)
}
