package wireguard

import (
	"context"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app/plane"
	"github.com/usipipo/usipipo/store/model"
)

// TestResumeAfterRestore takes a working peer off the device and puts it
// back, twice: suspended (the credential leaves the set) then restored, and
// cut at expiry then renewed. Its client is not touched (it keeps the
// session the server dropped and tries to use it meanwhile): the server
// greets it with a handshake, so a page loads within 3 s of the restore
// instead of after the client's ~15 s retry.
func TestResumeAfterRestore(t *testing.T) {
	srv := newTestServer(t, loopback, Options{})
	web := startHTTP(t)
	p := newTestPeer(t, srv, "r1", 0)
	apply := func(cs ...plane.Credential) {
		t.Helper()
		if err := srv.Apply(context.Background(), cs); err != nil {
			t.Fatal(err)
		}
	}
	fetch := func(d time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		_, err := p.httpGet(ctx, web+"/hello")
		return err
	}
	apply(p.cred)
	if err := fetch(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	// cycle takes the peer off with off, checks that it is, restores it with
	// on, and times the first page after that.
	cycle := func(what string, off, on []plane.Credential) {
		t.Helper()
		apply(off...)
		if err := fetch(time.Second); err == nil {
			t.Fatalf("%s: a page loaded while the peer was off the device", what)
		}
		apply(on...)
		start := time.Now()
		if err := fetch(3 * time.Second); err != nil {
			t.Fatalf("%s: no page within 3 s of the restore: %v", what, err)
		}
		t.Logf("%s: a page %v after the restore", what, time.Since(start).Round(time.Millisecond))
	}
	cycle("suspend, restore", nil, []plane.Credential{p.cred})

	expired, renewed := p.cred, p.cred
	expired.Version, expired.Limits = 2, model.Limits{ExpiresAt: time.Now().Add(-time.Second)}
	renewed.Version = 3
	cycle("expiry, renewal", []plane.Credential{expired}, []plane.Credential{renewed})
}
