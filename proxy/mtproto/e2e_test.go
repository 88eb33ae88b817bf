package mtproto

import (
	"context"
	"encoding/hex"
	"net"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app/plane"
	"github.com/usipipo/usipipo/proxy/mtproto/mtprototest"
)

// TestEndToEndGotd: gotd's MTProxy client completes a key exchange and an
// RPC through the proxy with dd and ee secrets, against several DCs at once.
func TestEndToEndGotd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second) // RSA under -race on a loaded machine
	defer cancel()
	dcList := []mtprototest.DC{mtprototest.StartDC(t, ctx, 2), mtprototest.StartDC(t, ctx, 4)}
	dcs := map[int]string{}
	for _, d := range dcList {
		dcs[d.ID] = d.Addr
	}
	front := startFront(t)
	s := startProxy(t, Options{DCs: dcs, CloakDomain: "cloak.example", FrontAddr: front.addr})
	key := randKey(t)
	if err := s.Apply(ctx, []plane.Credential{cred("u1", randKey(t)), cred("u2", key)}); err != nil {
		t.Fatal(err)
	}
	ee, _ := hex.DecodeString(FakeTLSSecret(key, "cloak.example"))
	dd := append([]byte{0xdd}, key...)
	for _, mode := range []struct {
		name   string
		secret []byte
	}{{"dd", dd}, {"ee", ee}} {
		for _, dc := range dcList {
			got, err := mtprototest.Call(ctx, s.Addr().String(), mode.secret, dc)
			if err != nil || got != dc.ID {
				t.Fatalf("%s via DC %d: got DC %d, %v", mode.name, dc.ID, got, err)
			}
		}
	}
	snap, _ := s.Counters(ctx)
	for _, c := range snap.Counters {
		if c.ID == "u2" && (c.Rx == 0 || c.Tx == 0 || c.Sources != 1) {
			t.Fatalf("counter %+v", c)
		}
		if c.ID == "u1" && c.Rx+c.Tx != 0 {
			t.Fatalf("unused secret counted: %+v", c)
		}
	}
	_ = net.IPv4len
}
