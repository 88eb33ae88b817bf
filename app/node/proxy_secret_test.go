package node

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/proxy/mtproto/mtprototest"
)

// viaProxy runs gotd's Telegram client through an MTProto proxy with a
// secret as a tg://proxy link carries it (hex), and returns the DC that
// answered help.getNearestDc.
func viaProxy(ctx context.Context, proxy, secretHex string, dc mtprototest.DC) (int, error) {
	secret, err := hex.DecodeString(secretHex)
	if err != nil {
		return 0, err
	}
	return mtprototest.Call(ctx, proxy, secret, dc)
}

// A node whose public host is an IP address hands out dd links, says why
// at start, and gotd's client connects with them; given --mtproto-domain
// it hands out ee links naming that domain, which connect too. Either node
// still takes the other kind: dd beside ee, and ee links handed out before
// (cloaked as the IP, when the proxy takes any server name).
func TestMTProtoLinkKinds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second) // RSA and DH under -race on a loaded machine
	defer cancel()
	dc := mtprototest.StartDC(t, ctx, 2)
	for _, tc := range []struct {
		name      string
		args      []string
		prefix    string
		cloak     string
		logged    string
		otherKind func(key string) string
	}{
		{"IP host", []string{"--public-host", "127.0.0.1"}, "dd", "", "--public-host 127.0.0.1 is an IP address",
			func(key string) string { return "ee" + key + hex.EncodeToString([]byte("127.0.0.1")) }},
		{"--mtproto-domain", []string{"--public-host", "127.0.0.1", "--mtproto-domain", "cloak.example"}, "ee", "cloak.example", "cloaked as cloak.example (--mtproto-domain)",
			func(key string) string { return "dd" + key }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mtAddr := freeTCPPort(t)
			args := append([]string{"--mtproto-listen", mtAddr, "--mtproto-dc", fmt.Sprintf("%d=%s", dc.ID, dc.Addr),
				"--egress-allow", "127.0.0.1/32"}, tc.args...)
			r := start(t, testConfig(t, filepath.Join(t.TempDir(), "data"), args...))
			defer r.stop()
			svc := r.node.Service
			u, err := svc.RegisterUser(ctx, app.ActorCLI, app.NewUser{TelegramID: 3030})
			if err != nil {
				t.Fatal(err)
			}
			px, err := svc.CreateProxy(ctx, app.ActorCLI, app.ProxyRequest{UserID: u.ID, Admin: true})
			if err != nil {
				t.Fatal(err)
			}
			c, err := svc.ProxyConfig(ctx, px.ID)
			if err != nil {
				t.Fatal(err)
			}
			l, err := url.Parse(c.Text)
			if err != nil {
				t.Fatal(err)
			}
			secret := l.Query().Get("secret")
			if l.Query().Get("server") != "127.0.0.1" || !strings.HasPrefix(secret, tc.prefix) ||
				len(secret) != 34+2*len(tc.cloak) || !strings.HasSuffix(secret, hex.EncodeToString([]byte(tc.cloak))) {
				t.Fatalf("link %q", c.Text)
			}
			if !strings.Contains(r.logs.String(), tc.logged) {
				t.Fatalf("the start-up log does not say %q:\n%s", tc.logged, r.logs.String())
			}
			for r.node.recon.Installed()["mtproto"] < 1 {
				select {
				case <-ctx.Done():
					t.Fatal("the proxy secret was never installed")
				case <-time.After(20 * time.Millisecond):
				}
			}
			for _, s := range []string{secret, tc.otherKind(secret[2:34])} {
				if got, err := viaProxy(ctx, mtAddr, s, dc); err != nil || got != dc.ID {
					t.Fatalf("secret %.2s…: reached DC %d, %v", s, got, err)
				}
			}
		})
	}
}
