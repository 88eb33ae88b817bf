package wireguard

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app/plane"
)

// TestParkedPeers: installed peers start off the device (parked) and cost
// it nothing; a client's handshake puts its peer on at once and its traffic
// flows; once idle past ParkAfter the peer is parked again with its counts
// kept, and the client's next handshake (its session has expired by then)
// wakes it again.
func TestParkedPeers(t *testing.T) {
	var skew atomic.Int64 // the server's clock runs ahead by this much
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	srv := newTestServer(t, loopback, Options{Now: now})
	web := startHTTP(t)
	p := newTestPeer(t, srv, "lazy", 0)
	other, _ := newCred(t, "other", 1)
	if err := srv.Apply(context.Background(), []plane.Credential{p.cred, other}); err != nil {
		t.Fatal(err)
	}
	onDevice := func() bool { return strings.Contains(ipcGet(t, srv), "public_key="+p.keyHex()) }
	if onDevice() || strings.Count(ipcGet(t, srv), "public_key=") != 0 {
		t.Fatal("a peer without a handshake is on the device")
	}
	if got := srv.metric(t, "usipipo_wireguard_peers_installed"); got != "2" {
		t.Fatalf("installed peers: %s", got)
	}
	fetch := func(what string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		start := time.Now()
		if _, err := p.httpGet(ctx, web+"/bytes?n=100000"); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		t.Logf("%s: a page in %v", what, time.Since(start).Round(time.Millisecond))
	}
	fetch("first handshake")
	if !onDevice() {
		t.Fatal("the peer is not on the device after its handshake")
	}
	before, _ := srv.Counters(context.Background())

	skew.Store(int64(DefaultParkAfter + time.Minute))
	eventually(t, 3*time.Second, "parking the idle peer", func() bool { return !onDevice() })
	after, _ := srv.Counters(context.Background())
	if c := counterOf(after, p.cred.ID); c.Rx+c.Tx < counterOf(before, p.cred.ID).Rx+counterOf(before, p.cred.ID).Tx || c.Rx == 0 {
		t.Fatalf("counts went back on parking: %+v then %+v", before, after)
	}
	if got := srv.metric(t, "usipipo_wireguard_peers_installed"); got != "2" {
		t.Fatalf("installed peers after parking: %s", got)
	}
	p.connect(t) // a new handshake, as after the client's session expired
	fetch("after parking")
}

func counterOf(s plane.Snapshot, id string) plane.Counter {
	for _, c := range s.Counters {
		if c.ID == id {
			return c
		}
	}
	return plane.Counter{}
}
