package wireguard

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"github.com/usipipo/usipipo/app/plane"
)

// TestDNSOverTCP asks the tunnel DNS address over TCP, two queries on one
// connection, as a resolver does after a truncated answer.
func TestDNSOverTCP(t *testing.T) {
	srv := newTestServer(t, loopback, Options{})
	p := newTestPeer(t, srv, "dns", 0)
	if err := srv.Apply(context.Background(), []plane.Credential{p.cred}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := p.net.DialContextTCPAddrPort(ctx, netip.AddrPortFrom(srv.gw4, 53))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	for i, name := range []string{"www.example.test.", "missing.invalid."} {
		m, err := askDNSTCP(c, uint16(100+i), name)
		if err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
		switch i {
		case 0:
			if len(m.Answers) != 1 || m.Answers[0].Body.(*dnsmessage.AResource).A != [4]byte{192, 0, 2, 1} {
				t.Fatalf("A %s: %+v", name, m.Answers)
			}
		case 1:
			if m.RCode != dnsmessage.RCodeNameError {
				t.Fatalf("%s: rcode %v", name, m.RCode)
			}
		}
	}
}

// askDNSTCP asks c, a DNS-over-TCP connection, for name's A records.
func askDNSTCP(c net.Conn, id uint16, name string) (dnsmessage.Message, error) {
	var m dnsmessage.Message
	q := dnsmessage.Message{Header: dnsmessage.Header{ID: id, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(name), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}}}
	raw, err := q.Pack()
	if err != nil {
		return m, err
	}
	if _, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(raw))), raw...)); err != nil {
		return m, err
	}
	var hdr [2]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return m, err
	}
	resp := make([]byte, binary.BigEndian.Uint16(hdr[:]))
	if _, err := io.ReadFull(c, resp); err != nil {
		return m, err
	}
	if err := m.Unpack(resp); err != nil {
		return m, err
	}
	if m.ID != id {
		return m, fmt.Errorf("answer to query %d has id %d", id, m.ID)
	}
	return m, nil
}

// TestPingOnlyTheGateway: the gateway answers echo; an address nobody
// answers for (TEST-NET-3) does not seem up.
func TestPingOnlyTheGateway(t *testing.T) {
	srv := newTestServer(t, loopback, Options{})
	p := newTestPeer(t, srv, "ping", 0)
	if err := srv.Apply(context.Background(), []plane.Credential{p.cred}); err != nil {
		t.Fatal(err)
	}
	ping(t, p, srv.gw4)
	if err := pingOnce(p, netip.MustParseAddr("203.0.113.77")); err == nil {
		t.Fatal("an echo reply came from an address no one answers for")
	}
	ping(t, p, srv.gw4)
}

func pingOnce(p *testPeer, a netip.Addr) error {
	c, err := p.net.DialPingAddr(netip.Addr{}, a)
	if err != nil {
		return err
	}
	defer c.Close()
	req, _ := (&icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: 8, Seq: 1, Data: []byte("stray")}}).Marshal(nil)
	if _, err := c.Write(req); err != nil {
		return err
	}
	c.SetReadDeadline(time.Now().Add(time.Second))
	_, err = c.Read(make([]byte, 1500))
	return err
}

// TestBudgetNotOvershot downloads at full speed with a 256 KiB budget and
// an enforcement interval of an hour: the relays count what they move and
// cut the peer as soon as the budget is spent, not at the next interval.
func TestBudgetNotOvershot(t *testing.T) {
	srv := newTestServer(t, loopback, Options{Interval: time.Hour})
	web := startHTTP(t)
	p := newTestPeer(t, srv, "cap", 0)
	c := p.cred
	c.Budget = 256 << 10
	if err := srv.Apply(context.Background(), []plane.Credential{c}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	body, err := p.httpGet(ctx, web+"/bytes?n=67108864")
	if err == nil {
		t.Fatal("64 MiB passed a 256 KiB budget")
	}
	snap, err := srv.Counters(context.Background())
	if err != nil || len(snap.Counters) != 1 {
		t.Fatal(snap, err)
	}
	used := snap.Counters[0].Rx + snap.Counters[0].Tx
	t.Logf("the client got %d bytes; the device counted %d for a budget of %d", len(body), used, c.Budget)
	if used > 4<<20 {
		t.Fatalf("the budget was overshot: %d bytes counted for %d", used, c.Budget)
	}
	if srv.metric(t, "usipipo_wireguard_peers_installed") != "0" {
		t.Fatal("the peer over budget is still installed")
	}
}
