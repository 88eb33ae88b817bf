package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/keyring"
	"github.com/usipipo/usipipo/store/model"
)

func serveTest(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(store.Options{Path: filepath.Join(dir, "db")})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := app.New(app.Options{Store: st, DataKey: keyring.Key{1}})
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "admin.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(svc, nil, nil)
	done := make(chan struct{})
	go func() { srv.Serve(context.Background(), ln); close(done) }()
	t.Cleanup(func() { ln.Close(); srv.Shutdown(context.Background()); <-done; st.Close() })
	return sock
}

func rawCall(t *testing.T, sock, line string) Response {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte(line))
	c.(*net.UnixConn).CloseWrite()
	b, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		t.Fatalf("no answer to %.40q: %v", line, err)
	}
	var r Response
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestHostileRequestsGetClearErrors(t *testing.T) {
	sock := serveTest(t)
	for _, tc := range []struct{ line, code, want string }{
		{"not json\n", "invalid", "bad request"},
		{`{"method":"nope"}` + "\n", "invalid", "unknown method"},
		{`{"method":"user.add","params":{"telegram_id":"x"}}` + "\n", "invalid", "params"},
		{`{"method":"user.add","params":{"telegram_id":-5}}` + "\n", "invalid", "telegram id"},
		{`{"method":"key.config","params":{"id":"../../etc"}}` + "\n", "invalid", "key id"},
		{strings.Repeat("x", 2<<20), "invalid", "longer than"},
		{`{"method":"user.show","params":{"id":"999"}}` + "\n", "not_found", "not found"},
	} {
		r := rawCall(t, sock, tc.line)
		if r.Error == nil || r.Error.Code != tc.code || !strings.Contains(r.Error.Message, tc.want) {
			t.Errorf("%.40q: %+v, want %s containing %q", tc.line, r.Error, tc.code, tc.want)
		}
	}
}

func TestClientMapsErrorsToSentinels(t *testing.T) {
	sock := serveTest(t)
	c := NewClient(sock)
	var u app.UserView
	if err := c.Call(context.Background(), "user.add", UserAdd{TelegramID: 5}, &u); err != nil {
		t.Fatal(err)
	}
	err := c.Call(context.Background(), "user.add", UserAdd{TelegramID: 5}, nil)
	if !errors.Is(err, model.ErrExists) {
		t.Fatalf("duplicate user: %v", err)
	}
	if err := NewClient(filepath.Join(t.TempDir(), "none.sock")).Call(context.Background(), "node.status", nil, nil); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("no socket: %v", err)
	}
}
