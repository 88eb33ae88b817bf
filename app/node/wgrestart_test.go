package node

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	wgnetstack "golang.zx2c4.com/wireguard/tun/netstack"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/store/model"
)

// TestWireGuardClientAcrossRestart: a wireguard-go client (stock
// tun/netstack) configured from the .conf the node hands out pings the
// tunnel gateway and fetches from a host address through the node; the
// node stops and starts again on the same data and port; the same client,
// untouched, re-handshakes and works again with the same tunnel address.
func TestWireGuardClientAcrossRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: waits for the client's handshake retry (~15 s)")
	}
	host := hostAddr(t)
	web := listenGreeter(t, host)
	port := freeUDPPort(t)
	cfg := testConfig(t, filepath.Join(t.TempDir(), "data"), "--wg-listen", "127.0.0.1:"+port, "--egress-allow", host.String()+"/32")
	r := start(t, cfg)
	svc, ctx := r.node.Service, context.Background()
	u, err := svc.RegisterUser(ctx, app.ActorCLI, app.NewUser{TelegramID: 4242})
	if err != nil {
		t.Fatal(err)
	}
	key, err := svc.CreateKey(ctx, app.ActorCLI, app.KeyRequest{UserID: u.ID, Type: model.WireGuard, Admin: true})
	if err != nil {
		t.Fatal(err)
	}
	conf, err := svc.KeyConfig(ctx, key.ID)
	if err != nil {
		t.Fatal(err)
	}
	c := newConfClient(t, conf.Text, "127.0.0.1:"+port)
	gw := netip.MustParseAddr("10.66.0.1")
	works := func(d time.Duration) bool {
		end := time.Now().Add(d)
		for time.Now().Before(end) {
			if c.ping(gw) == nil && c.fetch(web) == nil {
				return true
			}
		}
		return false
	}
	if !works(10 * time.Second) {
		t.Fatal("the client does not get through the node")
	}

	r.stop()
	if c.ping(gw) == nil {
		t.Fatal("the gateway answers with the node stopped")
	}
	start2 := time.Now()
	r2 := start(t, cfg)
	if !works(40 * time.Second) {
		t.Fatal("the client did not get through the restarted node within 40 s")
	}
	t.Logf("the client got through %v after the restart began", time.Since(start2).Round(100*time.Millisecond))
	conf2, err := r2.node.Service.KeyConfig(ctx, key.ID)
	if err != nil || conf2.Text != conf.Text {
		t.Fatalf("the key's config changed across the restart: %v\n%s\n%s", err, conf.Text, conf2.Text)
	}
}

// confClient is a wireguard-go client set up from a wg-quick .conf.
type confClient struct{ net *wgnetstack.Net }

func newConfClient(t *testing.T, conf, endpoint string) *confClient {
	t.Helper()
	field := func(name string) string {
		m := regexp.MustCompile(`(?m)^` + name + ` = (.+)$`).FindStringSubmatch(conf)
		if m == nil {
			t.Fatalf("no %s in\n%s", name, conf)
		}
		return strings.TrimSpace(m[1])
	}
	hexOf := func(name string) string {
		raw, err := base64.StdEncoding.DecodeString(field(name))
		if err != nil || len(raw) != 32 {
			t.Fatalf("%s: %v", name, err)
		}
		return hex.EncodeToString(raw)
	}
	var addrs []netip.Addr
	for _, a := range strings.Split(field("Address"), ",") {
		addrs = append(addrs, netip.MustParsePrefix(strings.TrimSpace(a)).Addr())
	}
	tdev, tnet, err := wgnetstack.CreateNetTUN(addrs, nil, 1420)
	if err != nil {
		t.Fatal(err)
	}
	dev := device.NewDevice(tdev, conn.NewStdNetBind(), device.NewLogger(device.LogLevelSilent, ""))
	t.Cleanup(dev.Close)
	if err := dev.IpcSet(fmt.Sprintf("private_key=%s\npublic_key=%s\npreshared_key=%s\nendpoint=%s\nallowed_ip=0.0.0.0/0\nallowed_ip=::/0\n",
		hexOf("PrivateKey"), hexOf("PublicKey"), hexOf("PresharedKey"), endpoint)); err != nil {
		t.Fatal(err)
	}
	if err := dev.Up(); err != nil {
		t.Fatal(err)
	}
	return &confClient{net: tnet}
}

// ping sends one echo request to a through the tunnel and waits 1 s for
// the reply.
func (c *confClient) ping(a netip.Addr) error {
	pc, err := c.net.DialPingAddr(netip.Addr{}, a)
	if err != nil {
		return err
	}
	defer pc.Close()
	req, _ := (&icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: 9, Seq: 1, Data: []byte("restart")}}).Marshal(nil)
	if _, err := pc.Write(req); err != nil {
		return err
	}
	pc.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 1500)
	n, err := pc.Read(buf)
	if err != nil {
		return err
	}
	if m, err := icmp.ParseMessage(1, buf[:n]); err != nil || m.Type != ipv4.ICMPTypeEchoReply {
		return fmt.Errorf("not an echo reply: %v", err)
	}
	return nil
}

// fetch reads the greeting of the server at a through the tunnel.
func (c *confClient) fetch(a netip.AddrPort) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn, err := c.net.DialContextTCPAddrPort(ctx, a)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	b, err := io.ReadAll(conn)
	if err != nil || string(b) != "through the node" {
		return fmt.Errorf("greeting %q: %v", b, err)
	}
	return nil
}

// hostAddr is a non-loopback IPv4 address of this host: the stock netstack
// client drops replies from loopback sources.
func hostAddr(t *testing.T) netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() && !p.Addr().IsLoopback() && !p.Addr().IsLinkLocalUnicast() {
			return p.Addr()
		}
	}
	t.Skip("no non-loopback IPv4 address on this host")
	return netip.Addr{}
}

// listenGreeter writes a greeting to every connection and closes it.
func listenGreeter(t *testing.T, host netip.Addr) netip.AddrPort {
	ln, err := net.Listen("tcp", netip.AddrPortFrom(host, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("through the node"))
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// freeUDPPort is a UDP port free on 127.0.0.1 a moment ago.
func freeUDPPort(t *testing.T) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return fmt.Sprint(pc.LocalAddr().(*net.UDPAddr).Port)
}
