package node

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/store/model"
)

// certFiles writes a self-signed certificate for vpn.test and 127.0.0.1
// and returns its files and a pool that trusts only it.
func certFiles(t *testing.T, dir string) (string, string, *x509.CertPool) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "vpn.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"vpn.test"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	cert, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	parsed, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(parsed)
	return cert, keyFile, pool
}

func freeTCPPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type reply struct {
	code   int
	header http.Header
	body   string
}

func get(t *testing.T, c *http.Client, method, url, body string) reply {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, string(b)}
}

// throughSS starts ss-local with exactly the dynamic key's fields and
// fetches url through it with curl, retrying while the node installs the key.
func throughSS(t *testing.T, doc map[string]any, url string) (string, error) {
	t.Helper()
	return fetchThroughSS(t, doc["server"].(string), int(doc["server_port"].(float64)), doc["method"].(string),
		doc["password"].(string), url)
}

// The public listener end to end: an Outline key made through the service
// is fetched as an ssconf:// key over HTTPS, used by shadowsocks-libev's
// ss-local, survives a rotation with the same URL, and answers Outline's
// error document once revoked. The same node serves Outline Manager's API
// with a pinned certificate that survives a restart, and the MTProto port
// fronts for the site.
func TestPublicListenerEndToEnd(t *testing.T) {
	for _, bin := range []string{"ss-local", "curl"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed (apt-get install shadowsocks-libev curl)", bin)
		}
	}
	dir := t.TempDir()
	cert, key, pool := certFiles(t, dir)
	mtAddr := freeTCPPort(t)
	cfg := testConfig(t, filepath.Join(dir, "data"), "--public-host", "127.0.0.1", "--public-listen", "127.0.0.1:0",
		"--tls-cert", cert, "--tls-key", key, "--ss-listen", freeTCPPort(t), "--mtproto-listen", mtAddr,
		"--egress-allow", "127.0.0.1/32", "--outline-api", "127.0.0.1:0")
	r := start(t, cfg)
	svc := r.node.Service
	https := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	site := "https://" + r.node.PublicAddr().String()

	ctx := context.Background()
	u, err := svc.RegisterUser(ctx, app.ActorCLI, app.NewUser{TelegramID: 77})
	if err != nil {
		t.Fatal(err)
	}
	k, err := svc.CreateKey(ctx, app.ActorCLI, app.KeyRequest{UserID: u.ID, Type: model.Outline, Name: "phone", Admin: true})
	if err != nil {
		t.Fatal(err)
	}
	conf, err := svc.KeyConfig(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := url.Parse(conf.Dynamic)
	if err != nil || dyn.Scheme != "ssconf" || dyn.Host != r.node.PublicAddr().String() || dyn.Fragment != "phone" {
		t.Fatalf("dynamic URL %q: %v", conf.Dynamic, err)
	}
	keyURL := "https://" + dyn.Host + dyn.Path
	fetch := func() map[string]any {
		t.Helper()
		a := get(t, https, "GET", keyURL, "")
		var doc map[string]any
		if err := json.Unmarshal([]byte(a.body), &doc); err != nil || a.code != 200 {
			t.Fatalf("ssconf fetch: %d %q %v", a.code, a.body, err)
		}
		return doc
	}
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hola desde el sink") }))
	defer page.Close()

	// The token is sealed at rest: the database file never holds it.
	db, err := os.ReadFile(dbPath(cfg.Data))
	if err != nil {
		t.Fatal(err)
	}
	if tok := strings.TrimPrefix(dyn.Path, app.DynamicPath); len(tok) < 22 || bytes.Contains(db, []byte(tok)) {
		t.Fatalf("token %q is in the database in clear (or malformed)", tok)
	}

	doc := fetch()
	if doc["server"] != "127.0.0.1" || doc["method"] != "chacha20-ietf-poly1305" {
		t.Fatalf("dynamic key %v", doc)
	}
	if out, err := throughSS(t, doc, page.URL); err != nil || out != "hola desde el sink" {
		t.Fatalf("through the dynamic key: %q %v", out, err)
	}

	if _, err := svc.RotateKey(ctx, app.ActorCLI, k.ID); err != nil {
		t.Fatal(err)
	}
	if c2, _ := svc.KeyConfig(ctx, k.ID); c2.Dynamic != conf.Dynamic {
		t.Fatalf("rotation changed the URL: %q → %q", conf.Dynamic, c2.Dynamic)
	}
	doc2 := fetch()
	if doc2["password"] == doc["password"] {
		t.Fatal("rotation kept the password")
	}
	if out, err := throughSS(t, doc2, page.URL); err != nil || out != "hola desde el sink" {
		t.Fatalf("after rotation: %q %v", out, err)
	}

	if err := svc.SetKeyStatus(ctx, app.ActorCLI, k.ID, model.KeyRevoked, "test"); err != nil {
		t.Fatal(err)
	}
	if doc := fetch(); doc["error"] == nil || doc["password"] != nil {
		t.Fatalf("revoked key: %v", doc)
	}

	// An unknown token is just another missing page; /api is not here.
	plain := get(t, https, "GET", site+"/nothing-here", "")
	for _, path := range []string{"/k/AAAAAAAAAAAAAAAAAAAAAAAA", "/api/v1/health", "/api/openapi.json"} {
		a := get(t, https, "GET", site+path, "")
		if a.code != 404 || a.body != plain.body || a.header.Get("Content-Type") != plain.header.Get("Content-Type") {
			t.Fatalf("%s: %d %q, want the plain 404 %q", path, a.code, a.body, plain.body)
		}
	}
	// QvaPay's callback is reachable (QvaPay is not configured here, so it
	// is asked to retry rather than answered 404).
	if a := get(t, https, "GET", site+"/pay/qvapay?id=tx&remote_id=p", ""); a.code == 404 || !strings.Contains(a.body, `"status"`) {
		t.Fatalf("qvapay callback: %d %q", a.code, a.body)
	}

	// A TLS client that is not an MTProto client, on the MTProto port, is
	// spliced to this site: it sees our certificate and our landing page.
	front := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "vpn.test"}}}
	if a := get(t, front, "GET", "https://"+mtAddr+"/", ""); a.code != 200 || !strings.Contains(a.body, "<title>127.0.0.1</title>") {
		t.Fatalf("fronted site: %d %q", a.code, a.body)
	}

	// Outline Manager's API: pinned certificate, secret path.
	line, err := OutlineAPIAccess(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var access struct {
		APIURL     string `json:"apiUrl"`
		CertSha256 string `json:"certSha256"`
	}
	if err := json.Unmarshal([]byte(line), &access); err != nil {
		t.Fatal(err)
	}
	apiURL, _ := url.Parse(access.APIURL)
	mgmt := "https://" + r.node.OutlineAPIAddr().String() + apiURL.Path
	pinned := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true, // Outline Manager trusts the pinned fingerprint, not a CA
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			sum := sha256.Sum256(raw[0])
			if strings.ToUpper(hex.EncodeToString(sum[:])) != access.CertSha256 {
				return fmt.Errorf("certificate is not the pinned one")
			}
			return nil
		}}}}
	mcall := func(method, path, body string, want int) map[string]any {
		t.Helper()
		a := get(t, pinned, method, mgmt+path, body)
		if a.code != want {
			t.Fatalf("%s %s: %d %q, want %d", method, path, a.code, a.body, want)
		}
		var m map[string]any
		if a.body != "" {
			json.Unmarshal([]byte(a.body), &m)
		}
		return m
	}
	if srv := mcall("GET", "/server", "", 200); srv["version"] != "test" || srv["serverId"] == "" {
		t.Fatalf("server: %v", srv)
	}
	created := mcall("POST", "/access-keys", "", 201)
	id := created["id"].(string)
	if !strings.HasPrefix(created["accessUrl"].(string), "ss://") {
		t.Fatalf("created: %v", created)
	}
	if list := mcall("GET", "/access-keys", "", 200)["accessKeys"].([]any); len(list) != 1 {
		t.Fatalf("list: %v (the revoked key must not show)", list)
	}
	mcall("PUT", "/access-keys/"+id+"/name", `{"name":"tablet"}`, 204)
	mcall("PUT", "/access-keys/"+id+"/data-limit", `{"limit":{"bytes":1000000}}`, 204)
	if k := mcall("GET", "/access-keys/"+id, "", 200); k["name"] != "tablet" || k["dataLimit"].(map[string]any)["bytes"] != float64(1000000) {
		t.Fatalf("key: %v", k)
	}
	if tr := mcall("GET", "/metrics/transfer", "", 200); tr["bytesTransferredByUserId"] == nil {
		t.Fatalf("transfer: %v", tr)
	}
	mcall("DELETE", "/access-keys/"+id, "", 204)
	mcall("DELETE", "/access-keys/"+id, "", 404)
	if a := get(t, pinned, "GET", "https://"+r.node.OutlineAPIAddr().String()+"/server", ""); a.code != 404 ||
		a.body != `{"code":"ResourceNotFound","message":"Not Found"}` {
		t.Fatalf("management API without its secret path: %d %q", a.code, a.body)
	}
	st, err := os.Stat(filepath.Join(cfg.Data, mgmtDirName, mgmtKeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("management key file: %v %v", st.Mode(), err)
	}

	// A restart keeps the certificate Outline Manager pinned, and the path.
	r.stop()
	r2 := start(t, cfg)
	if line2, err := OutlineAPIAccess(cfg); err != nil || line2 != line {
		t.Fatalf("after restart: %q, was %q (%v)", line2, line, err)
	}
	mgmt = "https://" + r2.node.OutlineAPIAddr().String() + apiURL.Path
	mcall("GET", "/server", "", 200)
}

// With --public-api the REST API is on the public listener too.
func TestPublicAPIOptIn(t *testing.T) {
	dir := t.TempDir()
	cert, key, pool := certFiles(t, dir)
	r := start(t, testConfig(t, filepath.Join(dir, "data"), "--public-listen", "127.0.0.1:0", "--public-api",
		"--tls-cert", cert, "--tls-key", key))
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "vpn.test"}}}
	base := "https://" + r.node.PublicAddr().String()
	if a := get(t, c, "GET", base+"/api/v1/health", ""); a.code != 200 {
		t.Fatalf("public /api/v1/health: %d %q", a.code, a.body)
	}
	if a := get(t, c, "GET", base+"/api/v1/users", ""); a.code != 401 || a.header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("public /api/v1/users without a token: %d %q", a.code, a.body)
	}
	if a := get(t, c, "GET", base+"/metrics", ""); a.code != 404 {
		t.Fatalf("/metrics on the public listener: %d", a.code)
	}
}

// Status lists every socket the node bound, the public listener and the
// Outline management API among them, each with its setting.
func TestStatusListsEverySocket(t *testing.T) {
	dir := t.TempDir()
	cert, key, _ := certFiles(t, dir)
	r := start(t, testConfig(t, filepath.Join(dir, "data"), "--public-listen", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key,
		"--outline-api", "127.0.0.1:0", "--mtproto-domain", "www.example.com"))
	v, err := r.node.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	st := v.(Status)
	bound := map[string]string{}
	for _, l := range st.Listeners {
		if l.Setting != "127.0.0.1:0" {
			t.Errorf("listener %+v: setting", l)
		}
		bound[l.Name+"/"+l.Network] = l.Bound
	}
	want := map[string]string{"http/tcp": r.node.HTTPAddr.String(), "public/tcp": r.node.PublicAddr().String(),
		"outline-api/tcp": r.node.OutlineAPIAddr().String()}
	for k, w := range want {
		if bound[k] != w {
			t.Errorf("%s bound %q, want %q", k, bound[k], w)
		}
	}
	for _, k := range []string{"wireguard/udp", "outline/tcp", "outline/udp", "mtproto/tcp"} {
		if a := bound[k]; !strings.HasPrefix(a, "127.0.0.1:") || strings.HasSuffix(a, ":0") {
			t.Errorf("%s bound %q", k, a)
		}
	}
	if st.MTProto == nil || st.MTProto.Secrets != "ee" || st.MTProto.Domain != "www.example.com" || !strings.Contains(st.MTProto.Why, "--mtproto-domain") {
		t.Errorf("mtproto %+v", st.MTProto)
	}
	if st.PublicHost != "vpn.test" || st.Settings == nil || st.Settings.MTProtoDomain != "www.example.com" {
		t.Errorf("public host %q, settings %+v", st.PublicHost, st.Settings)
	}
}
