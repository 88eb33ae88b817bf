package web

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/usipipo/usipipo/app/listen"
)

// The server runs on sockets from the listener registry, TCP and unix at
// once, and shuts down cleanly with it.
func TestServeOnRegistrySockets(t *testing.T) {
	reg, err := listen.New(func(string) string { return "" }, func(string) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	tcp, err := reg.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "admin.sock")
	ux, err := reg.ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Metrics: metrics.NewSet(), Version: "v"})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 2)
	go func() { served <- s.Serve(tcp) }()
	go func() { served <- s.Serve(ux) }()

	tcpClient := &http.Client{Transport: &http.Transport{}, Timeout: 5 * time.Second}
	unixClient := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	for name, get := range map[string]func() (*http.Response, error){
		"tcp":  func() (*http.Response, error) { return tcpClient.Get("http://" + tcp.Addr().String() + "/healthz") },
		"unix": func() (*http.Response, error) { return unixClient.Get("http://admin/healthz") },
	} {
		resp, err := get()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", name, resp.StatusCode)
		}
	}
	tcpClient.CloseIdleConnections()
	unixClient.CloseIdleConnections()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := <-served; err != nil {
			t.Fatalf("Serve: %v", err)
		}
	}
	if err := reg.Close(); err != nil {
		t.Fatalf("registry Close after server shutdown: %v", err)
	}
}
