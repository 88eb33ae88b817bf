package outline

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
)

// fakeManager is an in-memory Manager.
type fakeManager struct {
	info  ServerInfo
	keys  map[string]*ManagedKey
	order []string // ids in creation order
	next  int
}

func newFakeManager() *fakeManager {
	return &fakeManager{info: ServerInfo{Name: "node", ServerID: "srv", Created: time.UnixMilli(1700000000000),
		Version: "test", Port: 8388, Hostname: "vpn.example.net"}, keys: map[string]*ManagedKey{}}
}

func (f *fakeManager) Server(context.Context) (ServerInfo, error)       { return f.info, nil }
func (f *fakeManager) RenameServer(_ context.Context, n string) error   { f.info.Name = n; return nil }
func (f *fakeManager) SetHostname(_ context.Context, h string) error    { f.info.Hostname = h; return nil }
func (f *fakeManager) SetPortForNewKeys(_ context.Context, p int) error { f.info.Port = p; return nil }
func (f *fakeManager) SetDefaultDataLimit(_ context.Context, b *uint64) error {
	f.info.DefaultDataLimit = b
	return nil
}
func (f *fakeManager) Keys(context.Context) ([]ManagedKey, error) {
	var out []ManagedKey
	for _, id := range f.order {
		if k := f.keys[id]; k != nil {
			out = append(out, *k)
		}
	}
	return out, nil
}
func (f *fakeManager) Key(_ context.Context, id string) (ManagedKey, error) {
	if k := f.keys[id]; k != nil {
		return *k, nil
	}
	return ManagedKey{}, ErrNotFound
}
func (f *fakeManager) CreateKey(_ context.Context, n NewManagedKey) (ManagedKey, error) {
	sec, _ := NewSecret(rand.Reader)
	if n.Method != "" {
		sec.Method = n.Method
	}
	if n.Password != "" {
		sec.Password = n.Password
	}
	k := &ManagedKey{ID: fmt.Sprint(f.next), Name: n.Name, Secret: sec, Port: f.info.Port, DataLimit: n.DataLimit}
	f.keys[k.ID] = k
	f.order = append(f.order, k.ID)
	f.next++
	return *k, nil
}

// CreateKeyWithID takes ids of lower-case letters and digits, as a node
// takes only ids of its own format.
func (f *fakeManager) CreateKeyWithID(ctx context.Context, id string, n NewManagedKey) (ManagedKey, error) {
	if strings.Trim(id, "abcdefghijklmnopqrstuvwxyz0123456789") != "" {
		return ManagedKey{}, fmt.Errorf("id %q: %w", id, ErrInvalid)
	}
	if f.keys[id] != nil {
		return ManagedKey{}, fmt.Errorf("id %q in use: %w", id, ErrConflict)
	}
	k, err := f.CreateKey(ctx, n)
	if err != nil {
		return k, err
	}
	delete(f.keys, k.ID)
	f.order = f.order[:len(f.order)-1]
	k.ID = id
	f.keys[id] = &k
	f.order = append(f.order, id)
	return k, nil
}
func (f *fakeManager) DeleteKey(_ context.Context, id string) error {
	if f.keys[id] == nil {
		return ErrNotFound
	}
	delete(f.keys, id)
	return nil
}
func (f *fakeManager) RenameKey(_ context.Context, id, name string) error {
	if f.keys[id] == nil {
		return ErrNotFound
	}
	f.keys[id].Name = name
	return nil
}
func (f *fakeManager) SetKeyDataLimit(_ context.Context, id string, b *uint64) error {
	if f.keys[id] == nil {
		return ErrNotFound
	}
	f.keys[id].DataLimit = b
	return nil
}
func (f *fakeManager) Transfer(context.Context) (map[string]uint64, error) {
	return map[string]uint64{"0": 1234}, nil
}

// call makes one request and decodes a JSON answer into a map.
func call(t *testing.T, app *fiber.App, method, path, body string) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s %s: body %q is not JSON", method, path, b)
		}
	}
	return resp.StatusCode, m
}

func TestManagementAPIShapes(t *testing.T) {
	app := fiber.New()
	f := newFakeManager()
	MountManagement(app.Group("/SeCrEt"), f)
	const p = "/SeCrEt"

	code, srv := call(t, app, "GET", p+"/server", "")
	if code != 200 || srv["name"] != "node" || srv["serverId"] != "srv" || srv["createdTimestampMs"] != float64(1700000000000) ||
		srv["portForNewAccessKeys"] != float64(8388) || srv["hostnameForAccessKeys"] != "vpn.example.net" || srv["metricsEnabled"] != false {
		t.Fatalf("server: %d %v", code, srv)
	}
	if resp, _ := app.Test(httptest.NewRequest("GET", "/server", nil), -1); resp.StatusCode != 404 {
		t.Fatal("served without the secret prefix")
	}
	for _, c := range []struct {
		method, path, body string
		want               int
	}{
		{"PUT", "/name", `{"name":"Nuevo"}`, 204},
		{"PUT", "/name", `{}`, 400},
		{"PUT", "/name", `not json`, 400},
		{"PUT", "/server/hostname-for-access-keys", `{"hostname":"ss.example.net"}`, 204},
		{"PUT", "/server/port-for-new-access-keys", `{"port":8443}`, 204},
		{"PUT", "/server/port-for-new-access-keys", `{"port":70000}`, 400},
		{"PUT", "/server/access-key-data-limit", `{"limit":{"bytes":1000}}`, 204},
		{"PUT", "/server/access-key-data-limit", `{"limit":{"bytes":-1}}`, 400},
		{"PUT", "/metrics/enabled", `{"metricsEnabled":true}`, 204},
		{"PUT", "/metrics/enabled", `{}`, 400},
	} {
		if code, body := call(t, app, c.method, p+c.path, c.body); code != c.want {
			t.Fatalf("%s %s %s: %d %v, want %d", c.method, c.path, c.body, code, body, c.want)
		} else if c.want == 400 && body["code"] != "InvalidArgument" {
			t.Fatalf("%s %s: error body %v", c.method, c.path, body)
		}
	}
	if f.info.Name != "Nuevo" || f.info.Hostname != "ss.example.net" || f.info.Port != 8443 || *f.info.DefaultDataLimit != 1000 {
		t.Fatalf("settings not applied: %+v", f.info)
	}
	if code, m := call(t, app, "GET", p+"/metrics/enabled", ""); code != 200 || m["metricsEnabled"] != true {
		t.Fatalf("metrics enabled: %d %v", code, m)
	}
	if code, _ := call(t, app, "DELETE", p+"/server/access-key-data-limit", ""); code != 204 || f.info.DefaultDataLimit != nil {
		t.Fatal("default limit not removed")
	}

	// Keys: create (Outline Manager posts no body), list, get, rename, limit, delete.
	code, k := call(t, app, "POST", p+"/access-keys", "")
	if code != 201 || k["id"] != "0" || k["method"] != DefaultMethod || k["port"] != float64(8443) ||
		!strings.HasPrefix(k["accessUrl"].(string), "ss://") || !strings.Contains(k["accessUrl"].(string), "@ss.example.net:8443/") {
		t.Fatalf("create: %d %v", code, k)
	}
	if code, k := call(t, app, "POST", p+"/access-keys", `{"name":"b","method":"aes-256-gcm","limit":{"bytes":5}}`); code != 201 ||
		k["name"] != "b" || k["method"] != "aes-256-gcm" || k["dataLimit"].(map[string]any)["bytes"] != float64(5) {
		t.Fatalf("create with body: %d %v", code, k)
	}
	if code, _ := call(t, app, "POST", p+"/access-keys", `{"method":"rc4-md5"}`); code != 400 {
		t.Fatal("an unsupported cipher was accepted")
	}
	code, list := call(t, app, "GET", p+"/access-keys", "")
	if keys := list["accessKeys"].([]any); code != 200 || len(keys) != 2 || keys[0].(map[string]any)["password"] == "" {
		t.Fatalf("list: %d %v", code, list)
	}
	for _, c := range []struct {
		method, path, body string
		want               int
	}{
		{"GET", "/access-keys/0", "", 200},
		{"GET", "/access-keys/9", "", 404},
		{"PUT", "/access-keys/0/name", `{"name":"renamed"}`, 204},
		{"PUT", "/access-keys/9/name", `{"name":"x"}`, 404},
		{"PUT", "/access-keys/0/name", `{"nombre":"x"}`, 400},
		{"PUT", "/access-keys/0/data-limit", `{"limit":{"bytes":2000}}`, 204},
		{"PUT", "/access-keys/0/data-limit", `{"limit":{}}`, 400},
		{"PUT", "/access-keys/9/data-limit", `{"limit":{"bytes":1}}`, 404},
		{"DELETE", "/access-keys/1/data-limit", "", 204},
		{"DELETE", "/access-keys/1", "", 204},
		{"DELETE", "/access-keys/1", "", 404},
	} {
		code, body := call(t, app, c.method, p+c.path, c.body)
		if code != c.want {
			t.Fatalf("%s %s %s: %d %v, want %d", c.method, c.path, c.body, code, body, c.want)
		}
		if c.want == 404 && (body["code"] != "NotFound" || body["message"] == "") {
			t.Fatalf("%s %s: not-found body %v", c.method, c.path, body)
		}
	}
	if code, k := call(t, app, "GET", p+"/access-keys/0", ""); code != 200 || k["name"] != "renamed" ||
		k["dataLimit"].(map[string]any)["bytes"] != float64(2000) {
		t.Fatalf("key after changes: %v", k)
	}
	if code, m := call(t, app, "GET", p+"/metrics/transfer", ""); code != 200 ||
		m["bytesTransferredByUserId"].(map[string]any)["0"] != float64(1234) {
		t.Fatalf("transfer: %d %v", code, m)
	}
}

// TestManagementPutKey is PUT /access-keys/{id} as Outline's server
// answers it: 201 with the key under that id, 409 for an id in use, 400
// for a bad body or an id the node cannot take; an id in a POST body is
// refused; a Manager that cannot choose ids answers 501, creating nothing.
func TestManagementPutKey(t *testing.T) {
	app := fiber.New()
	f := newFakeManager()
	MountManagement(app.Group("/s"), f)
	code, k := call(t, app, "PUT", "/s/access-keys/mine1", `{"name":"Mía","method":"aes-128-gcm","password":"pw8","limit":{"bytes":10000}}`)
	if code != 201 || k["id"] != "mine1" || k["name"] != "Mía" || k["method"] != "aes-128-gcm" || k["password"] != "pw8" ||
		k["port"] != float64(8388) || k["dataLimit"].(map[string]any)["bytes"] != float64(10000) ||
		!strings.Contains(k["accessUrl"].(string), "@vpn.example.net:8388/") {
		t.Fatalf("put: %d %v", code, k)
	}
	if code, k := call(t, app, "GET", "/s/access-keys/mine1", ""); code != 200 || k["name"] != "Mía" {
		t.Fatalf("get after put: %d %v", code, k)
	}
	if code, k := call(t, app, "PUT", "/s/access-keys/mine2", ""); code != 201 || k["id"] != "mine2" || k["method"] != DefaultMethod {
		t.Fatalf("put without a body: %d %v", code, k)
	}
	for _, c := range []struct {
		method, path, body string
		want               int
		code               string
	}{
		{"PUT", "/access-keys/mine1", `{"name":"again"}`, 409, "Conflict"},
		{"PUT", "/access-keys/Not-Ours", "", 400, "InvalidArgument"},
		{"PUT", "/access-keys/mine3", `{"method":"rc4-md5"}`, 400, "InvalidArgument"},
		{"PUT", "/access-keys/mine3", `{"port":"8388"}`, 400, "InvalidArgument"},
		{"PUT", "/access-keys/mine3", `{"limit":{"bytes":-5}}`, 400, "InvalidArgument"},
		{"PUT", "/access-keys/mine3", `not json`, 400, "InvalidArgument"},
		{"POST", "/access-keys", `{"id":"mine3"}`, 400, "InvalidArgument"},
	} {
		code, body := call(t, app, c.method, "/s"+c.path, c.body)
		if code != c.want || body["code"] != c.code || body["message"] == "" {
			t.Fatalf("%s %s %s: %d %v, want %d %s", c.method, c.path, c.body, code, body, c.want, c.code)
		}
	}
	if code, list := call(t, app, "GET", "/s/access-keys", ""); code != 200 || len(list["accessKeys"].([]any)) != 2 {
		t.Fatalf("refused calls created keys: %v", list)
	}

	plain := fiber.New()
	MountManagement(plain.Group("/s"), struct{ Manager }{f})
	if code, body := call(t, plain, "PUT", "/s/access-keys/mine4", ""); code != 501 || body["code"] != "NotImplemented" {
		t.Fatalf("without CreateKeyWithID: %d %v", code, body)
	}
	if f.keys["mine4"] != nil || len(f.keys) != 2 {
		t.Fatal("a refused PUT created a key")
	}
}

// TestManagementFormRename renames a key the way Outline Manager does, with
// a form-encoded body (its requestForm), and the server likewise.
func TestManagementFormRename(t *testing.T) {
	app := fiber.New()
	f := newFakeManager()
	MountManagement(app.Group("/s"), f)
	if code, _ := call(t, app, "POST", "/s/access-keys", ""); code != 201 {
		t.Fatal("create")
	}
	form := func(path, body string) int {
		req := httptest.NewRequest("PUT", path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := app.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := form("/s/access-keys/0/name", "name=Mi+llave+%C3%BA"); code != 204 || f.keys["0"].Name != "Mi llave ú" {
		t.Fatalf("form rename: %d %q", code, f.keys["0"].Name)
	}
	if code := form("/s/name", "name=Nodo"); code != 204 || f.info.Name != "Nodo" {
		t.Fatalf("form server rename: %d %q", code, f.info.Name)
	}
	if code := form("/s/access-keys/0/name", "nombre=x"); code != 400 || f.keys["0"].Name != "Mi llave ú" {
		t.Fatalf("form without a name: %d", code)
	}
	if code := form("/s/access-keys/9/name", "name=x"); code != 404 {
		t.Fatalf("form rename of an unknown key: %d", code)
	}
}

type fakeDynamic map[string]DynamicKey

func (f fakeDynamic) DynamicKey(_ context.Context, token string) (DynamicKey, error) {
	if k, ok := f[token]; ok {
		return k, nil
	}
	return DynamicKey{}, ErrNotFound
}

func TestDynamicKeyHandler(t *testing.T) {
	app := fiber.New()
	app.Get("/ss/:token", DynamicKeyHandler(fakeDynamic{
		"good":    {Server: "vpn.example.net", Port: 8388, Secret: Secret{Method: DefaultMethod, Password: "pw"}, Prefix: "\x16\x03\x01"},
		"expired": {Refusal: "Tu clave venció el 1 de mayo"},
	}))
	code, m := call(t, app, "GET", "/ss/good", "")
	if code != 200 || m["server"] != "vpn.example.net" || m["server_port"] != float64(8388) || m["password"] != "pw" ||
		m["method"] != DefaultMethod || m["prefix"] != "\x16\x03\x01" {
		t.Fatalf("good: %d %v", code, m)
	}
	code, m = call(t, app, "GET", "/ss/expired", "")
	if e, _ := m["error"].(map[string]any); code != 200 || e["message"] != "Tu clave venció el 1 de mayo" {
		t.Fatalf("expired: %d %v", code, m)
	}
	resp, _ := app.Test(httptest.NewRequest("GET", "/ss/unknown", nil), -1)
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("unknown token: %d %v", resp.StatusCode, resp.Header)
	}
	if u := DynamicKeyURL("keys.example.net", 443, "/ss/good", "Mi llave"); u != "ssconf://keys.example.net:443/ss/good#Mi%20llave" {
		t.Fatalf("url %q", u)
	}
}

func TestManagementCert(t *testing.T) {
	for _, host := range []string{"203.0.113.7", "vpn.example.net"} {
		cert, fp, err := ManagementCert(host, rand.Reader, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		x, err := x509.ParseCertificate(cert.Certificate[0])
		if err != nil || x.VerifyHostname(host) != nil {
			t.Fatalf("%s: %v", host, err)
		}
		sum := sha256.Sum256(cert.Certificate[0])
		if fp != strings.ToUpper(hex.EncodeToString(sum[:])) {
			t.Fatal("fingerprint")
		}
	}
}
