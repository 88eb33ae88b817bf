package outline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http/httptest"
	"testing"

	"github.com/gofiber/fiber/v2"
)

func FuzzParseAddr(f *testing.F) {
	f.Add([]byte{1, 127, 0, 0, 1, 0, 80})
	f.Add([]byte{3, 3, 'a', '.', 'b', 1, 187})
	f.Add(append([]byte{4}, make([]byte, 18)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, n, err := ParseAddr(b)
		if err != nil {
			return
		}
		if n > len(b) {
			t.Fatalf("consumed %d of %d", n, len(b))
		}
		again, m, err := ParseAddr(AppendAddr(nil, a))
		if err != nil || again != a || m == 0 {
			t.Fatalf("%v did not round-trip: %v %v", a, again, err)
		}
	})
}

func FuzzStreamReader(f *testing.F) {
	c, _ := NewCipher(DefaultMethod, "fuzz")
	var wire bytes.Buffer
	w, _ := NewStreamWriter(&wire, c, make([]byte, 32))
	w.Write([]byte("seed payload"))
	f.Add(wire.Bytes())
	f.Add(make([]byte, 60))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := NewStreamReader(bytes.NewReader(b), c)
		if err != nil {
			return
		}
		n, _ := io.Copy(io.Discard, r)
		if n > int64(len(b)) {
			t.Fatalf("decoded %d bytes from %d", n, len(b))
		}
		// The server's path: the length already opened by the key search.
		if m, ok := tcpTrials(b)(0)(&keyEntry{c: c}); ok {
			r := newStreamReader(bytes.NewReader(b[32+lenChunkSize:]), m.aead, 1, m.n)
			if _, err := readTarget(r); err == nil {
				io.Copy(io.Discard, r)
			}
		}
	})
}

func FuzzOpenPacket(f *testing.F) {
	c, _ := NewCipher("aes-128-gcm", "fuzz")
	pkt, _ := SealPacket(c, nil, AppendAddr(nil, Addr{Host: "a.b", Port: 53}))
	f.Add(pkt)
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		keep := bytes.Clone(b)
		dst := make([]byte, len(b))
		if m, ok := udpTrials(b, dst)(0)(&keyEntry{c: c}); ok {
			ParseAddr(m.plain)
		}
		if !bytes.Equal(keep, b) {
			t.Fatal("a trial changed the packet")
		}
		if p, err := OpenPacket(c, b); err == nil {
			ParseAddr(p)
		}
	})
}

// FuzzManagementBodies: whatever body Outline Manager (or whoever holds
// the secret path) sends to a call that changes something, the answer is
// the change (2xx, with what was asked applied and valid) or Outline's
// error shape (4xx, nothing changed), never a 500 or a panic.
func FuzzManagementBodies(f *testing.F) {
	routes := []struct{ method, path string }{
		{"PUT", "/name"}, {"PUT", "/server/hostname-for-access-keys"}, {"PUT", "/server/port-for-new-access-keys"},
		{"PUT", "/server/access-key-data-limit"}, {"PUT", "/metrics/enabled"}, {"POST", "/access-keys"},
		{"PUT", "/access-keys/chosen"}, {"PUT", "/access-keys/0/name"}, {"PUT", "/access-keys/0/data-limit"},
	}
	for i, body := range []string{`{"name":"Nuevo"}`, `{"hostname":"ss.example.net"}`, `{"port":8443}`,
		`{"limit":{"bytes":1000}}`, `{"metricsEnabled":true}`, `{"name":"b","method":"aes-256-gcm","limit":{"bytes":5},"port":9000}`,
		`{"password":"p"}`, `{"name":"renamed"}`, `{"limit":{"bytes":0}}`} {
		f.Add(uint8(i), []byte(body), false)
	}
	f.Add(uint8(2), []byte(`{"port":"8443"}`), false)
	f.Add(uint8(2), []byte(`{"port":1e3}`), false)
	f.Add(uint8(3), []byte(`{"limit":{"bytes":9223372036854775808}}`), false)
	f.Add(uint8(5), []byte(`{"id":"x"}`), false)
	f.Add(uint8(7), []byte("name=%E2%82%AC"), true)
	f.Add(uint8(0), []byte("nombre=x"), true)
	f.Fuzz(func(t *testing.T, route uint8, body []byte, form bool) {
		r := routes[int(route)%len(routes)]
		fm := newFakeManager()
		fm.CreateKey(context.Background(), NewManagedKey{Name: "first"}) // id "0"
		app := fiber.New()
		MountManagement(app.Group("/s"), fm)
		before := fm.snapshot()

		req := httptest.NewRequest(r.method, "/s"+r.path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if form {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := app.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		switch code := resp.StatusCode; {
		case code == 201 || code == 204:
			if err := fm.valid(); err != nil {
				t.Fatalf("%s %s %q: %d, %v", r.method, r.path, body, code, err)
			}
		case code == 400 || code == 409:
			var e struct{ Code, Message string }
			if json.Unmarshal(out, &e) != nil || e.Code == "" || e.Message == "" {
				t.Fatalf("%s %s %q: error body %q", r.method, r.path, body, out)
			}
			if after := fm.snapshot(); after != before {
				t.Fatalf("%s %s %q: %d, yet %s became %s", r.method, r.path, body, code, before, after)
			}
		default:
			t.Fatalf("%s %s %q: %d %q", r.method, r.path, body, code, out)
		}
	})
}

// snapshot is the manager's state, to compare.
func (f *fakeManager) snapshot() string {
	b, _ := json.Marshal(struct {
		Info ServerInfo
		Keys map[string]*ManagedKey
	}{f.info, f.keys})
	return string(b)
}

// valid checks the manager holds only what a node could serve.
func (f *fakeManager) valid() error {
	if f.info.Port < 1 || f.info.Port > 65535 {
		return fmt.Errorf("port %d", f.info.Port)
	}
	if l := f.info.DefaultDataLimit; l != nil && *l > math.MaxInt64 {
		return fmt.Errorf("default limit %d", *l)
	}
	for id, k := range f.keys {
		if _, ok := methods[k.Secret.Method]; !ok || k.Port < 0 || k.Port > 65535 || id == "" {
			return fmt.Errorf("key %q: %+v", id, k)
		}
		if l := k.DataLimit; l != nil && *l > math.MaxInt64 {
			return fmt.Errorf("key %q limit %d", id, *l)
		}
	}
	return nil
}
