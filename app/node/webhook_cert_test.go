package node

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"log/slog"
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app/bot/bottest"
	"github.com/usipipo/usipipo/app/pay"
)

// formPart is one part of a multipart call: a text field or a file.
type formPart struct {
	name, filename string
	data           []byte
}

// formLog is a proxy in front of the fake Bot API that keeps the parts of
// every multipart setWebhook as they were on the wire (the fake keeps the
// fields and the file, but not the file's field name).
type formLog struct {
	mu    sync.Mutex
	calls [][]formPart
}

func (f *formLog) front(t *testing.T, target string) *httptest.Server {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if strings.HasSuffix(r.URL.Path, "/setWebhook") && err == nil && params["boundary"] != "" {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			var parts []formPart
			mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
			for {
				p, err := mr.NextPart()
				if err != nil {
					break
				}
				data, _ := io.ReadAll(p)
				parts = append(parts, formPart{name: p.FormName(), filename: p.FileName(), data: data})
			}
			f.mu.Lock()
			f.calls = append(f.calls, parts)
			f.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (f *formLog) uploads() [][]formPart {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// leafPEM is the first certificate of a PEM file, re-encoded alone.
func leafPEM(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", file)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: blk.Bytes})
}

// checkSetWebhook checks a recorded setWebhook: with upload, a multipart
// call whose file is exactly upload and whose text fields are the JSON
// call's parameters in form encoding; without, the plain JSON call.
func checkSetWebhook(t *testing.T, ev bottest.Event, wantURL, secret string, upload []byte) {
	t.Helper()
	p := ev.Params
	allowed, _ := p["allowed_updates"].([]any)
	drop := p["drop_pending_updates"]
	if upload != nil {
		if ev.File == nil || !bytes.Equal(ev.File.Data, upload) {
			t.Fatalf("setWebhook did not upload the leaf certificate: %+v", ev.File)
		}
		s, _ := p["allowed_updates"].(string)
		if err := json.Unmarshal([]byte(s), &allowed); err != nil {
			t.Fatalf("allowed_updates %q: %v", s, err)
		}
		if drop != "false" {
			t.Fatalf("drop_pending_updates %v", drop)
		}
	} else {
		if ev.File != nil {
			t.Fatalf("setWebhook uploaded %s for a trusted certificate", ev.File.Name)
		}
		if drop != false {
			t.Fatalf("drop_pending_updates %v", drop)
		}
	}
	for _, want := range []string{"message", "callback_query", "pre_checkout_query"} {
		if !slices.Contains(allowed, any(want)) {
			t.Errorf("allowed_updates %v lacks %s", allowed, want)
		}
	}
	if p["url"] != wantURL || p["secret_token"] != secret || len(p) != 4 {
		t.Fatalf("setWebhook %v", p)
	}
}

// checkUpload checks a multipart setWebhook on the wire: the certificate
// part is the leaf's PEM, and no part carries a private key.
func checkUpload(t *testing.T, parts []formPart, leaf []byte) {
	t.Helper()
	var names []string
	for _, p := range parts {
		names = append(names, p.name)
		if bytes.Contains(p.data, []byte("PRIVATE KEY")) {
			t.Fatalf("part %s carries a private key", p.name)
		}
		if p.name == "certificate" && (p.filename == "" || !bytes.Equal(p.data, leaf)) {
			t.Fatalf("certificate part %q: %q", p.filename, p.data)
		}
	}
	slices.Sort(names)
	if want := []string{"allowed_updates", "certificate", "drop_pending_updates", "secret_token", "url"}; !slices.Equal(names, want) {
		t.Fatalf("parts %v, want %v", names, want)
	}
}

// testCert writes a certificate for vpn.test, signed by parent (self-signed
// when nil), and its key, as name.crt and name.key in dir; the certificate
// file also carries extra after the leaf, as a chain file does.
func testCert(t *testing.T, dir, name string, isCA bool, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, extra ...*x509.Certificate) (string, string, *x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: isCA}
	if isCA {
		tmpl.KeyUsage = x509.KeyUsageCertSign
	} else {
		tmpl.DNSNames = []string{"vpn.test"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	signer, signKey := tmpl, key
	if parent != nil {
		signer, signKey = parent, parentKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	chain := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	for _, c := range extra {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	cp, kp := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	// Renamed into place, as a renewal tool does: never half a file.
	for path, b := range map[string][]byte{cp: chain, kp: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})} {
		if err := os.WriteFile(path+".tmp", b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
	}
	c, _ := x509.ParseCertificate(der)
	return cp, kp, c, key
}

// install copies a certificate pair over the files a node was given, as a
// rotation does.
func install(t *testing.T, certSrc, keySrc, certDst, keyDst string) {
	t.Helper()
	for src, dst := range map[string]string{certSrc: certDst, keySrc: keyDst} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst+".tmp", b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(dst+".tmp", dst); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoadWebhookCert(t *testing.T) {
	dir := t.TempDir()
	_, _, ca, caKey := testCert(t, dir, "ca", true, nil, nil)
	signedCert, signedKey, _, _ := testCert(t, dir, "signed", false, ca, caKey)
	selfCert, selfKey, self, _ := testCert(t, dir, "self", false, nil, nil)
	// A self-signed leaf followed by another certificate: only the leaf goes.
	chainCert, chainKey, _, _ := testCert(t, dir, "selfchain", false, nil, nil, ca)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	selfRoots := x509.NewCertPool()
	selfRoots.AddCert(self)
	for _, tc := range []struct {
		name              string
		cert, key         string
		roots             *x509.CertPool
		upload, untrusted bool
	}{
		{"CA-signed, trusted", signedCert, signedKey, roots, false, false},
		{"CA-signed, CA unknown", signedCert, signedKey, x509.NewCertPool(), false, true},
		{"self-signed", selfCert, selfKey, roots, true, false},
		{"self-signed with a chain", chainCert, chainKey, roots, true, false},
		{"self-signed but trusted", selfCert, selfKey, selfRoots, false, false},
	} {
		c, err := loadWebhookCert(tc.cert, tc.key, tc.roots)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if c.upload != tc.upload || c.untrusted != tc.untrusted {
			t.Errorf("%s: upload %v untrusted %v, want %v %v", tc.name, c.upload, c.untrusted, tc.upload, tc.untrusted)
		}
		if !bytes.Equal(c.pem(), leafPEM(t, tc.cert)) {
			t.Errorf("%s: pem is not the leaf alone", tc.name)
		}
	}
	if _, err := loadWebhookCert(selfCert, signedKey, nil); err == nil {
		t.Fatal("a certificate with another's key was accepted")
	}
}

// The registrar uploads a self-signed leaf with setWebhook, registers again
// when a rotation changes the leaf and the old or new one is uploaded, and
// uses the plain call for a CA-signed one and for ACME; an unchanged or
// half-written pair, or a change between trusted certificates, calls
// nothing. Only the leaf's PEM is sent, never the key or the secret.
func TestWebhookCertRotation(t *testing.T) {
	const token = "777003:cert-rotation-token"
	api, err := bottest.New(token)
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	forms := &formLog{}
	front := forms.front(t, api.URL)
	dir := t.TempDir()
	_, _, ca, caKey := testCert(t, dir, "ca", true, nil, nil)
	selfA, keyA, _, _ := testCert(t, dir, "selfA", false, nil, nil)
	selfB, keyB, _, _ := testCert(t, dir, "selfB", false, nil, nil)
	signedC, keyC, _, _ := testCert(t, dir, "signedC", false, ca, caKey)
	signedD, keyD, _, _ := testCert(t, dir, "signedD", false, ca, caKey)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	certFile, keyFile := filepath.Join(dir, "live.crt"), filepath.Join(dir, "live.key")
	install(t, selfA, keyA, certFile, keyFile)

	const hook, secret = "https://vpn.test:8443/tg/webhook", "s3cret-s3cret-s3cret-s3cret-s3cret"
	logs := &syncBuffer{}
	params := map[string]any{"url": hook, "secret_token": secret, "allowed_updates": pay.AllowedUpdates(), "drop_pending_updates": false}
	bot := pay.NewBotAPI(front.URL, token, nil)
	seen := 0
	next := func(what string) bottest.Event {
		t.Helper()
		ev, err := api.WaitFor(seen, 10*time.Second, func(e bottest.Event) bool { return e.Method == "setWebhook" })
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		seen = ev.Seq + 1
		return ev
	}

	// ACME (no --tls-cert): one plain call, nothing watched.
	acme := &webhookRegistrar{api: bot, params: params, log: slog.New(slog.NewJSONHandler(logs, nil))}
	acme.run(t.Context(), nil)
	checkSetWebhook(t, next("ACME"), hook, secret, nil)

	reg := &webhookRegistrar{api: bot, params: params, log: slog.New(slog.NewJSONHandler(logs, nil)),
		certFile: certFile, keyFile: keyFile, roots: roots}
	if reg.cert, err = loadWebhookCert(certFile, keyFile, roots); err != nil {
		t.Fatal(err)
	}
	// run: the first registration, and a rotation seen at a tick.
	ctx, cancel := context.WithCancel(t.Context())
	ticks := make(chan time.Time)
	done := make(chan struct{})
	go func() { defer close(done); reg.run(ctx, ticks) }()
	checkSetWebhook(t, next("self-signed A"), hook, secret, leafPEM(t, selfA))
	install(t, selfB, keyB, certFile, keyFile)
	ticks <- time.Now()
	checkSetWebhook(t, next("self-signed B"), hook, secret, leafPEM(t, selfB))
	cancel()
	<-done

	// The checks run's ticks make, one by one.
	recheck := func() {
		t.Helper()
		if err := reg.recheck(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	recheck() // unchanged: nothing
	os.WriteFile(certFile, []byte("-----BEGIN CERTIFICATE-----\nMII"), 0o600)
	recheck() // half written: nothing, the registration stands, one warning
	recheck()
	install(t, selfA, keyA, certFile, keyFile)
	recheck()
	checkSetWebhook(t, next("self-signed A after B"), hook, secret, leafPEM(t, selfA))
	install(t, signedC, keyC, certFile, keyFile)
	recheck() // self-signed to trusted: plain, so Telegram drops A
	checkSetWebhook(t, next("CA-signed C"), hook, secret, nil)
	install(t, signedD, keyD, certFile, keyFile)
	recheck() // trusted to trusted: the registration stands
	install(t, selfB, keyB, certFile, keyFile)
	recheck()
	checkSetWebhook(t, next("self-signed B again"), hook, secret, leafPEM(t, selfB))

	var calls int
	for _, e := range api.Events(0) {
		if e.Method == "setWebhook" {
			calls++
		}
	}
	if calls != 6 {
		t.Fatalf("%d setWebhook calls, want 6 (ACME's and five)", calls)
	}
	ups := forms.uploads()
	if len(ups) != 4 {
		t.Fatalf("%d multipart calls, want 4", len(ups))
	}
	for i, want := range []string{selfA, selfB, selfA, selfB} {
		checkUpload(t, ups[i], leafPEM(t, want))
	}
	if n := strings.Count(logs.String(), `"telegram_webhook_cert"`); n != 1 || strings.Contains(logs.String(), secret) {
		t.Fatalf("%d warnings of the half-written pair (want 1), or the secret is logged:\n%s", n, logs.String())
	}
}
