// Package mtprototest holds what the MTProto proxy's tests and the node's
// share: gotd's test data centre on loopback, and gotd's Telegram client
// run through a proxy to it.
package mtprototest

import (
	"context"
	"crypto/rsa"
	"net"
	"testing"

	"github.com/gotd/td/crypto"
	"github.com/gotd/td/exchange"
	"github.com/gotd/td/session"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/dcs"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgtest"
	"github.com/gotd/td/transport"
)

// DC is gotd's test data centre on loopback, behind the obfuscated2
// listener a real DC has.
type DC struct {
	ID   int
	Addr string
	Key  exchange.PublicKey
}

// StartDC serves data centre id until ctx ends; it answers help.getConfig
// and help.getNearestDc.
func StartDC(t testing.TB, ctx context.Context, id int) DC {
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go srv.Serve(ctx, transport.Listen(transport.ObfuscatedListener(ln)))
	return DC{ID: id, Addr: ln.Addr().String(), Key: srv.Key()}
}

// Call runs gotd's client through the MTProto proxy at proxy with a client
// secret (its raw bytes), and returns the DC it reached, which answers
// help.getNearestDc.
func Call(ctx context.Context, proxy string, secret []byte, dc DC) (int, error) {
	resolver, err := dcs.MTProxy(proxy, secret, dcs.MTProxyOptions{})
	if err != nil {
		return 0, err
	}
	client := telegram.NewClient(1, "hash", telegram.Options{
		Resolver:       resolver,
		PublicKeys:     []telegram.PublicKey{dc.Key},
		DC:             dc.ID,
		DCList:         dcs.List{Options: []tg.DCOption{{ID: dc.ID, IPAddress: "127.0.0.1", Port: 1}}},
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
