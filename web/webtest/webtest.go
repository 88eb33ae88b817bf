// Package webtest serves a web.Server on loopback for tests only.
package webtest

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/usipipo/usipipo/web"
)

// Serve serves srv on 127.0.0.1:0 until the test ends, then shuts it down
// (giving its requests 5 s) and waits for Serve to return. It returns the
// base URL, "http://127.0.0.1:PORT".
func Serve(tb testing.TB, srv *web.Server) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
	})
	return "http://" + ln.Addr().String()
}
