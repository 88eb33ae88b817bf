package node

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/app/config"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// syncBuffer collects logs written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type running struct {
	node *Node
	logs *syncBuffer
	term *syncBuffer
	data string
	stop func()
}

func testConfig(t testing.TB, data string, extra ...string) *config.Config {
	t.Helper()
	// netstack: as root, auto would pick tun and change the host's network.
	args := append([]string{"--data", data, "--http", "127.0.0.1:0", "--wg-listen", "127.0.0.1:0", "--wg-mode", "netstack",
		"--ss-listen", "127.0.0.1:0", "--mtproto-listen", "127.0.0.1:0", "--public-host", "vpn.test"}, extra...)
	cfg, err := config.Parse(args, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func start(t testing.TB, cfg *config.Config) *running {
	t.Helper()
	r := &running{logs: &syncBuffer{}, term: &syncBuffer{}, data: cfg.Data}
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan *Node, 4)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, cfg, Options{Version: "test", Logs: r.logs, Terminal: r.term, Started: func(n *Node) { started <- n }})
	}()
	select {
	case r.node = <-started:
	case err := <-done:
		t.Fatalf("node stopped: %v\n%s", err, r.logs.String())
	case <-time.After(30 * time.Second):
		t.Fatal("node did not start")
	}
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("node: %v", err)
			}
		})
	}
	t.Cleanup(r.stop)
	return r
}

// TestNoSecretInClear issues every kind of secret, then looks for each of
// them, in every encoding it is handed out in, in the database file (as
// `strings` would), in the audit trail and in the logs.
func TestNoSecretInClear(t *testing.T) {
	r := start(t, testConfig(t, filepath.Join(t.TempDir(), "data")))
	svc, ctx := r.node.Service, context.Background()

	var secrets []string
	add := func(s ...string) { secrets = append(secrets, s...) }
	passphrase := regexp.MustCompile(`Backup passphrase:\s+(\S+)`).FindStringSubmatch(r.term.String())
	password := regexp.MustCompile(`One-time password:\s+(\S+)`).FindStringSubmatch(r.term.String())
	if passphrase == nil || password == nil {
		t.Fatalf("init output: %q", r.term.String())
	}
	add(passphrase[1], password[1])

	u, err := svc.RegisterUser(ctx, app.ActorCLI, app.NewUser{TelegramID: 777, Username: "very_private_username", FirstName: "Privatename"})
	if err != nil {
		t.Fatal(err)
	}
	add("very_private_username", "Privatename")
	wg, _ := svc.CreateKey(ctx, app.ActorCLI, app.KeyRequest{UserID: u.ID, Type: model.WireGuard, Admin: true})
	conf, _ := svc.KeyConfig(ctx, wg.ID)
	for _, field := range []string{"PrivateKey", "PresharedKey"} {
		v := regexp.MustCompile(field + ` = (\S+)`).FindStringSubmatch(conf.Text)[1]
		raw, _ := base64.StdEncoding.DecodeString(v)
		add(v, string(raw), hex.EncodeToString(raw))
	}
	ss, _ := svc.CreateKey(ctx, app.ActorCLI, app.KeyRequest{UserID: u.ID, Type: model.Outline, Admin: true})
	ssConf, _ := svc.KeyConfig(ctx, ss.ID)
	userinfo, _ := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(strings.Split(ssConf.Text, "@")[0], "ss://"))
	add(string(userinfo), strings.SplitN(string(userinfo), ":", 2)[1])
	px, _ := svc.CreateProxy(ctx, app.ActorCLI, app.ProxyRequest{UserID: u.ID, Admin: true})
	pxConf, _ := svc.ProxyConfig(ctx, px.ID)
	secretHex := regexp.MustCompile(`secret=ee([0-9a-f]{32})`).FindStringSubmatch(pxConf.Text)[1]
	rawSecret, _ := hex.DecodeString(secretHex)
	add(secretHex, string(rawSecret))
	key, _ := svc.CreateAPIKey(ctx, app.ActorCLI, "crm", []model.Scope{model.ScopeAdmin}, time.Time{})
	add(key.Token, key.Token[len(key.Token)-32:])
	pw, _ := svc.ResetAdminPassword(ctx, app.ActorCLI, "ops")
	add(pw)
	nodeKey, _ := os.ReadFile(filepath.Join(r.data, "node.key"))
	add(strings.TrimSpace(string(nodeKey)))
	add(string(r.node.sec.dataKey[:]), hex.EncodeToString(r.node.sec.dataKey[:]))

	entries, _, err := r.node.Store.Audit(store.AuditFilter{}, store.Page{Limit: store.MaxLimit})
	if err != nil || len(entries) < 5 {
		t.Fatalf("audit: %v (%d entries)", err, len(entries))
	}
	var audit bytes.Buffer
	for _, e := range entries {
		audit.Write(e.Command)
	}
	r.stop()
	db, err := os.ReadFile(filepath.Join(r.data, "usipipo.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets {
		if len(s) < 8 {
			t.Fatalf("secret too short to search for: %q", s)
		}
		for where, hay := range map[string][]byte{"database file": db, "audit trail": audit.Bytes(), "logs": []byte(r.logs.String())} {
			if bytes.Contains(hay, []byte(s)) {
				t.Errorf("a secret (%.6s…) is in the %s in clear", s, where)
			}
		}
	}
	// Sanity: the search does find what is meant to be there.
	if !bytes.Contains(db, []byte(wg.ID)) {
		t.Fatal("the search cannot see the database contents")
	}
}

func TestRestartKeepsStateAndGracefulShutdown(t *testing.T) {
	cfg := testConfig(t, filepath.Join(t.TempDir(), "data"))
	r := start(t, cfg)
	svc, ctx := r.node.Service, context.Background()
	// Writers in flight when the shutdown starts: every acknowledged one
	// must be there after a restart.
	var mu sync.Mutex
	var acked []string
	var wg sync.WaitGroup
	stopWriting := make(chan struct{})
	for i := range 8 {
		wg.Go(func() {
			for j := 0; ; j++ {
				select {
				case <-stopWriting:
					return
				default:
				}
				u, err := svc.RegisterUser(ctx, app.ActorCLI, app.NewUser{TelegramID: int64(1000*(i+1) + j)})
				if err != nil {
					return
				}
				mu.Lock()
				acked = append(acked, u.ID)
				mu.Unlock()
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	r.stop()
	close(stopWriting)
	wg.Wait()
	if !strings.Contains(r.logs.String(), `"action":"stopped"`) {
		t.Fatalf("no clean stop in logs:\n%s", r.logs.String())
	}
	r2 := start(t, cfg)
	for _, id := range acked {
		if _, err := r2.node.Store.User(id); err != nil {
			t.Fatalf("acknowledged user %s lost: %v", id, err)
		}
	}
	if len(acked) == 0 {
		t.Fatal("no write was acknowledged before the shutdown")
	}
	if strings.Contains(r2.term.String(), "One-time password") {
		t.Fatal("a restart initialised the node again")
	}
}
