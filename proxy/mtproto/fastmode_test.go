package mtproto

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"testing"
	"time"

	"github.com/gotd/td/mtproxy"
	"github.com/gotd/td/mtproxy/obfuscated2"

	"github.com/usipipo/usipipo/app/plane"
	"github.com/usipipo/usipipo/proxy/mtproto/mtprototest"
	"github.com/usipipo/usipipo/proxy/mtproto/wire"
)

// TestPassthroughInit: a DC that parses our fast-mode init (gotd's server
// side) encrypts towards us with exactly the keystream the client (gotd's
// client side) decrypts with, and still reads our upstream correctly.
func TestPassthroughInit(t *testing.T) {
	key := randKey(t)
	var toProxy bytes.Buffer
	cl := obfuscated2.NewObfuscated2(rand.Reader, &toProxy)
	if err := cl.Handshake(ddTag, 3, mtproxy.Secret{Secret: key, Type: mtproxy.Secured, Tag: 0xdd}); err != nil {
		t.Fatal(err)
	}
	var raw [wire.InitLen]byte
	copy(raw[:], toProxy.Next(wire.InitLen))
	in, err := wire.ParseInit(&raw, key)
	if err != nil {
		t.Fatal(err)
	}
	dcInit, enc, err := wire.NewDCInitPassthrough(rand.Reader, &raw, key, in.Tag, in.DC)
	if err != nil {
		t.Fatal(err)
	}
	// The DC side, by gotd's own server code.
	var toDC bytes.Buffer
	toDC.Write(dcInit[:])
	up := []byte("upstream, re-encrypted by the proxy")
	sealed := bytes.Clone(up)
	enc.XORKeyStream(sealed, sealed)
	toDC.Write(sealed)
	var fromDC bytes.Buffer
	dcSide, md, err := obfuscated2.Accept(struct {
		io.Reader
		io.Writer
	}{&toDC, &fromDC}, nil)
	if err != nil || int(int16(md.DC)) != 3 || md.Protocol != ddTag {
		t.Fatalf("DC accept: %+v %v", md, err)
	}
	got := make([]byte, len(up))
	if _, err := io.ReadFull(dcSide, got); err != nil || !bytes.Equal(got, up) {
		t.Fatalf("DC read %q %v", got, err)
	}
	down := []byte("downstream bytes the proxy forwards untouched")
	if _, err := dcSide.Write(down); err != nil {
		t.Fatal(err)
	}
	// The DC's ciphertext goes to the client as it is: the gotd client
	// reads from the buffer it wrote its init to.
	back := make([]byte, len(down))
	toProxy.Reset()
	toProxy.Write(fromDC.Bytes())
	if _, err := io.ReadFull(cl, back); err != nil || !bytes.Equal(back, down) {
		t.Fatalf("client read %q %v", back, err)
	}
	if bytes.Equal(dcInit[8:56], raw[8:56]) {
		t.Fatal("the DC init repeats the client's init")
	}
}

// TestFastModeRelay: dd and ee clients echo through an obfuscated2 DC
// with fast mode on, in several TLS records each way, and are counted.
func TestFastModeRelay(t *testing.T) {
	s, _, dc, key := fixture(t, Options{FastMode: true})
	for _, mode := range []string{"dd", "ee"} {
		g, err := dialGotd(t, s.Addr().String(), mode, key, -2)
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		big := make([]byte, 100<<10)
		for i := range big {
			big[i] = byte(i * 13)
		}
		if err := g.echo(big); err != nil {
			t.Fatalf("%s: echo: %v", mode, err)
		}
		if md := <-dc.seen; int(int16(md.DC)) != -2 {
			t.Fatalf("DC saw %+v", md)
		}
	}
	snap, _ := s.Counters(context.Background())
	if len(snap.Counters) != 1 || snap.Counters[0].Tx < 200<<10 || snap.Counters[0].Rx < 200<<10 {
		t.Fatalf("counters %+v", snap.Counters)
	}
}

// TestEndToEndGotdFastMode: gotd's MTProxy client completes a key
// exchange and an RPC through the proxy in fast mode, dd and ee, against
// two DCs.
func TestEndToEndGotdFastMode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second) // RSA under -race on a loaded machine
	defer cancel()
	dcList := []mtprototest.DC{mtprototest.StartDC(t, ctx, 1), mtprototest.StartDC(t, ctx, 5)}
	dcs := map[int]string{}
	for _, d := range dcList {
		dcs[d.ID] = d.Addr
	}
	s := startProxy(t, Options{DCs: dcs, CloakDomain: "cloak.example", FastMode: true})
	key := randKey(t)
	if err := s.Apply(ctx, []plane.Credential{cred("u", key)}); err != nil {
		t.Fatal(err)
	}
	ee, _ := hex.DecodeString(FakeTLSSecret(key, "cloak.example"))
	for _, secret := range [][]byte{append([]byte{0xdd}, key...), ee} {
		for _, dc := range dcList {
			got, err := mtprototest.Call(ctx, s.Addr().String(), secret, dc)
			if err != nil || got != dc.ID {
				t.Fatalf("secret %x… via DC %d: got DC %d, %v", secret[:1], dc.ID, got, err)
			}
		}
	}
}
