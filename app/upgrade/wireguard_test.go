package upgrade_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	wgnetstack "golang.zx2c4.com/wireguard/tun/netstack"

	"github.com/usipipo/usipipo/app/admin"
)

// wgPeer is a wireguard-go client with a userspace stack, configured from
// the wg-quick file the node issued.
type wgPeer struct {
	net     *wgnetstack.Net
	gateway string
}

func newWGPeer(t *testing.T, conf string) *wgPeer {
	t.Helper()
	return newWGPeerOn(t, conf, conn.NewStdNetBind())
}

// newWGPeerOn is newWGPeer sending over bind.
func newWGPeerOn(t *testing.T, conf string, bind conn.Bind) *wgPeer {
	t.Helper()
	kv := map[string]string{}
	// "key = value": base64 values end in "=", so cut at " = ".
	for _, l := range strings.Split(conf, "\n") {
		if k, v, ok := strings.Cut(l, " = "); ok {
			kv[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	hexKey := func(name string) string {
		b, err := base64.StdEncoding.DecodeString(kv[name])
		if err != nil || len(b) != 32 {
			t.Fatalf("%s in the client config: %q", name, kv[name])
		}
		return hex.EncodeToString(b)
	}
	var addrs []netip.Addr
	for _, a := range strings.Split(kv["Address"], ",") {
		p, err := netip.ParsePrefix(strings.TrimSpace(a))
		if err != nil {
			t.Fatalf("Address %q: %v", a, err)
		}
		addrs = append(addrs, p.Addr())
	}
	tdev, tnet, err := wgnetstack.CreateNetTUN(addrs, nil, 1420)
	if err != nil {
		t.Fatal(err)
	}
	dev := device.NewDevice(tdev, bind, device.NewLogger(device.LogLevelSilent, ""))
	t.Cleanup(dev.Close)
	cfg := fmt.Sprintf("private_key=%s\npublic_key=%s\npreshared_key=%s\nendpoint=%s\nallowed_ip=0.0.0.0/0\nallowed_ip=::/0\n",
		hexKey("PrivateKey"), hexKey("PublicKey"), hexKey("PresharedKey"), kv["Endpoint"])
	if err := dev.IpcSet(cfg); err != nil {
		t.Fatal(err)
	}
	if err := dev.Up(); err != nil {
		t.Fatal(err)
	}
	// The node's gateway is the first address of the peer's /16 pool.
	b := addrs[0].As4()
	return &wgPeer{net: tnet, gateway: netip.AddrFrom4([4]byte{b[0], b[1], 0, 1}).String()}
}

// query asks the node's in-tunnel DNS server for a TXT record (answered
// empty, without resolving anything): one round trip through the tunnel.
func (p *wgPeer) query(ctx context.Context) error {
	c, err := p.net.DialContext(ctx, "udp", p.gateway+":53")
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	name := dnsmessage.MustNewName("upgrade.test.")
	msg := dnsmessage.Message{Header: dnsmessage.Header{ID: 7, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: name, Type: dnsmessage.TypeTXT, Class: dnsmessage.ClassINET}}}
	q, err := msg.Pack()
	if err != nil {
		return err
	}
	if _, err := c.Write(q); err != nil {
		return err
	}
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	var resp dnsmessage.Message
	if err := resp.Unpack(buf[:n]); err != nil || resp.ID != 7 || !resp.Response {
		return fmt.Errorf("bad DNS answer: %v", err)
	}
	return nil
}

// within retries query until it succeeds or d passes; it returns how long
// it took.
func (p *wgPeer) within(d time.Duration) (time.Duration, error) {
	start := time.Now()
	var err error
	for time.Since(start) < d {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		err = p.query(ctx)
		cancel()
		if err == nil {
			return time.Since(start), nil
		}
	}
	return time.Since(start), err
}

// TestUpgradeWireGuardPeerResumes: a WireGuard peer passes traffic again
// within 10 s of an upgrade (its session stayed with the old process; the
// new one starts the handshake).
func TestUpgradeWireGuardPeerResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	v1, v2 := build(t, dir, "v1.0.0-test"), build(t, dir, "v2.0.0-test")
	notify := newNotifySocket(t)
	n := startNode(t, v1, echoDC(t), "NOTIFY_SOCKET="+notify.path)
	var u struct {
		ID string `json:"id"`
	}
	n.call("user.add", admin.UserAdd{TelegramID: 77}, &u)
	var key struct {
		Config struct {
			Text string `json:"text"`
		} `json:"config"`
	}
	n.call("key.add", admin.KeyAdd{UserID: u.ID, Type: "wireguard"}, &key)
	peer := newWGPeer(t, key.Config.Text)
	if took, err := peer.within(10 * time.Second); err != nil {
		t.Fatalf("no traffic through the tunnel before the upgrade (%v): %v", took, err)
	}
	if out, err := n.cli(v2, "upgrade", "--binary", v2); err != nil {
		t.Fatalf("usipipo upgrade: %v\n%s", err, out)
	}
	took, err := peer.within(10 * time.Second)
	if err != nil {
		t.Fatalf("no traffic through the tunnel within %v of the upgrade: %v", took, err)
	}
	t.Logf("the peer passed traffic again %v after the upgrade finished", took.Round(time.Millisecond))
	if !strings.Contains(n.logs.String(), "upgrade_reached_peers") {
		t.Error("the new process did not start handshakes")
	}
	// systemd follows the new process before it says READY (so that
	// NotifyAccess=main accepts it).
	st, err := n.status()
	if err != nil {
		t.Fatal(err)
	}
	first := notify.index(0, "READY=1")
	handed := notify.index(first+1, fmt.Sprintf("MAINPID=%d\n", st.PID))
	if first < 0 || handed < 0 || notify.index(handed+1, "READY=1") < 0 {
		t.Fatalf("notifications %q: want READY, MAINPID=%d, READY", notify.all(), st.PID)
	}
}
