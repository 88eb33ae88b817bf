package mtproto

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gotd/td/mtproxy"
	"github.com/gotd/td/mtproxy/obfuscated2"
	"github.com/usipipo/usipipo/proxy/mtproto/wire"
)

// TestSkew: a hello signed too far in the past or future is fronted.
func TestSkew(t *testing.T) {
	s, front, _, key := fixture(t, Options{Skew: 5 * time.Second})
	for _, off := range []time.Duration{-time.Minute, time.Minute} {
		msg := wire.BuildHello("cloak.example", 100)
		wire.SignHello(msg, wire.HelloRecords(msg, 1<<14), key, time.Now().Add(off))
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.Write(wire.HelloRecords(msg, 1<<14))
		front.wait(t, "cloak.example")
		c.Close()
	}
	if s.replay.window != 10*time.Second {
		t.Fatalf("replay window %v is not twice the skew", s.replay.window)
	}
}

// TestParseInitAgainstGotd: gotd's obfuscated2 client and our parser agree
// on tag, DC and both key streams; our DC init parses back.
func TestParseInitAgainstGotd(t *testing.T) {
	key := randKey(t)
	var wbuf bytes.Buffer
	cl := obfuscated2.NewObfuscated2(rand.Reader, &wbuf)
	if err := cl.Handshake(ddTag, -4, mtproxy.Secret{Secret: key, Type: mtproxy.Secured, Tag: 0xdd}); err != nil {
		t.Fatal(err)
	}
	var raw [wire.InitLen]byte
	copy(raw[:], wbuf.Next(wire.InitLen))
	in, err := wire.ParseInit(&raw, key)
	if err != nil || in.DC != -4 || in.Tag != wire.TagPaddedIntermediate || !wire.TagMatches(&raw, key) {
		t.Fatalf("%+v %v", in, err)
	}
	if _, err := wire.ParseInit(&raw, randKey(t)); err == nil {
		t.Fatal("parsed with a wrong secret")
	}
	cl.Write([]byte("to server"))
	got := wbuf.Next(100)
	in.Dec.XORKeyStream(got, got)
	if string(got) != "to server" {
		t.Fatalf("decrypted %q", got)
	}
	back := []byte("to client")
	in.Enc.XORKeyStream(back, back)
	wbuf.Write(back)
	buf := make([]byte, 9)
	if _, err := io.ReadFull(cl, buf); err != nil || string(buf) != "to client" {
		t.Fatalf("client read %q %v", buf, err)
	}

	dcInit, _, _, err := wire.NewDCInit(rand.Reader, wire.TagIntermediate, 10003)
	if err != nil {
		t.Fatal(err)
	}
	if in, err := wire.ParseInit(&dcInit, nil); err != nil || in.DC != 10003 || in.Tag != wire.TagIntermediate {
		t.Fatalf("DC init: %+v %v", in, err)
	}
}

func TestReplayCache(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newReplayCache(time.Minute, 3, now)
	d := func(b byte) [16]byte { return [16]byte{b} }
	if c.seen(d(1), now) || !c.seen(d(1), now.Add(30*time.Second)) {
		t.Fatal("replay within the window missed")
	}
	if !c.seen(d(1), now.Add(90*time.Second)) { // in the previous generation
		t.Fatal("replay after one rotation missed")
	}
	if c.seen(d(2), now.Add(10*time.Minute)) || c.seen(d(1), now.Add(10*time.Minute)) {
		t.Fatal("stale digest remembered")
	}
	for b := range byte(10) { // a flood rotates early, bounded at 2 generations
		c.seen(d(100+b), now.Add(10*time.Minute))
	}
	if len(c.cur)+len(c.prev) > 6 || c.early == 0 {
		t.Fatalf("cache grew to %d", len(c.cur)+len(c.prev))
	}
}
