package mtproto

import (
	"context"
	"crypto/rsa"
	"encoding/hex"
	"net"
	"testing"
	"time"

	"github.com/gotd/td/crypto"
	"github.com/gotd/td/exchange"
	"github.com/gotd/td/session"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/dcs"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgtest"
	"github.com/gotd/td/transport"

	"github.com/usipipo/usipipo/app/plane"
)

// fakeDC is gotd's test data centre on loopback, behind the obfuscated2
// listener a real DC has.
type fakeDC struct {
	id   int
	addr string
	key  exchange.PublicKey
}

func startFakeDC(t *testing.T, ctx context.Context, id int) fakeDC {
	t.Helper()
	rsaKey, err := rsa.GenerateKey(crypto.DefaultRand(), crypto.RSAKeyBits)
	if err != nil {
		t.Fatal(err)
	}
	d := tgtest.NewDispatcher()
	d.HandleFunc(tg.HelpGetConfigRequestTypeID, func(s *tgtest.Server, req *tgtest.Request) error {
		return s.SendResult(req, &tg.Config{ThisDC: id, DCOptions: []tg.DCOption{{ID: id, IPAddress: "127.0.0.1", Port: 1}}})
	})
	d.HandleFunc(tg.HelpGetNearestDCRequestTypeID, func(s *tgtest.Server, req *tgtest.Request) error {
		return s.SendResult(req, &tg.NearestDC{Country: "ZZ", ThisDC: id, NearestDC: id})
	})
	srv := tgtest.NewServer(exchange.PrivateKey{RSA: rsaKey}, tgtest.UnpackInvoke(d), tgtest.ServerOptions{DC: id})
	ln := listen(t)
	go srv.Serve(ctx, transport.Listen(transport.ObfuscatedListener(ln)))
	return fakeDC{id: id, addr: ln.Addr().String(), key: srv.Key()}
}

// callThrough runs a gotd client through the proxy with a client secret,
// and returns the DC it reached, which answers help.getNearestDc.
func callThrough(ctx context.Context, proxy string, secret []byte, dc fakeDC) (int, error) {
	resolver, err := dcs.MTProxy(proxy, secret, dcs.MTProxyOptions{})
	if err != nil {
		return 0, err
	}
	client := telegram.NewClient(1, "hash", telegram.Options{
		Resolver:       resolver,
		PublicKeys:     []telegram.PublicKey{dc.key},
		DC:             dc.id,
		DCList:         dcs.List{Options: []tg.DCOption{{ID: dc.id, IPAddress: "127.0.0.1", Port: 1}}},
		SessionStorage: &session.StorageMemory{},
		NoUpdates:      true,
	})
	var got int
	err = client.Run(ctx, func(ctx context.Context) error {
		n, err := client.API().HelpGetNearestDC(ctx)
		if err != nil {
			return err
		}
		got = n.ThisDC
		return nil
	})
	return got, err
}

// TestEndToEndGotd: gotd's MTProxy client completes a key exchange and an
// RPC through the proxy with dd and ee secrets, against several DCs at once.
func TestEndToEndGotd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second) // RSA under -race on a loaded machine
	defer cancel()
	dcList := []fakeDC{startFakeDC(t, ctx, 2), startFakeDC(t, ctx, 4)}
	dcs := map[int]string{}
	for _, d := range dcList {
		dcs[d.id] = d.addr
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
			got, err := callThrough(ctx, s.Addr().String(), mode.secret, dc)
			if err != nil || got != dc.id {
				t.Fatalf("%s via DC %d: got DC %d, %v", mode.name, dc.id, got, err)
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
