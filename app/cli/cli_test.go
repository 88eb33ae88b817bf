package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app/config"
	"github.com/usipipo/usipipo/app/node"
)

// runCLI runs one command in-process and returns its exit code and output.
func runCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(context.Background(), args, Env{Stdout: &out, Stderr: &errb, Version: "test",
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	return code, out.String(), errb.String()
}

// testNode is a node the CLI under test talks to.
type testNode struct {
	*node.Node
	data string
	logs *bytes.Buffer // the node's log; read it only after stop
	stop func()        // stops the node; runs at the latest when the test ends
}

// runNode runs a node on the data dir data (a fresh temp dir if "") with
// every listener on port 0 and the extra flags, and returns once it has
// started.
func runNode(t *testing.T, data string, extra ...string) *testNode {
	t.Helper()
	if data == "" {
		data = filepath.Join(t.TempDir(), "data")
	}
	cfg, err := config.Parse(append([]string{"--data", data, "--http", "127.0.0.1:0", "--wg-listen", "127.0.0.1:0", "--wg-mode", "netstack",
		"--ss-listen", "127.0.0.1:0", "--mtproto-listen", "127.0.0.1:0", "--public-host", "vpn.test", "--backup-every", "0"}, extra...), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tn := &testNode{data: data, logs: &bytes.Buffer{}}
	started := make(chan struct{})
	var once sync.Once
	done := make(chan error, 1)
	go func() {
		done <- node.Run(ctx, cfg, node.Options{Version: "test", Logs: tn.logs, Terminal: &bytes.Buffer{},
			Started: func(n *node.Node) { once.Do(func() { tn.Node = n; close(started) }) }})
	}()
	select {
	case <-started:
	case err := <-done:
		cancel()
		t.Fatalf("node did not start: %v\n%s", err, tn.logs.String())
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatal("node did not start in 20 s")
	}
	var stopOnce sync.Once
	tn.stop = func() {
		stopOnce.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("node stopped with %v", err)
			}
		})
	}
	t.Cleanup(tn.stop)
	return tn
}

// startNode runs a node on a fresh data dir and returns the dir and what
// stops the node.
func startNode(t *testing.T) (data string, stop func()) {
	t.Helper()
	n := runNode(t, "")
	return n.data, n.stop
}

func TestAdminVerbsAgainstRunningNode(t *testing.T) {
	data, stop := startNode(t)
	defer stop()
	env := map[string]string{"USIPIPO_DATA": data}

	code, out, errs := runCLI(t, env, "user", "add", "--telegram-id", "123", "--username", "maria")
	if code != 0 || !strings.Contains(out, "telegram: 123") {
		t.Fatalf("user add: %d %q %q", code, out, errs)
	}
	code, out, _ = runCLI(t, env, "user", "show", "123", "--json")
	var detail struct {
		User struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &detail) != nil || detail.User.ID == "" {
		t.Fatalf("user show --json: %d %q", code, out)
	}
	userID := detail.User.ID

	code, out, errs = runCLI(t, env, "key", "add", "--user", userID, "--type", "wireguard", "--name", "phone")
	if code != 0 || !strings.Contains(out, "[Interface]") || !strings.Contains(out, "Endpoint = vpn.test:") {
		t.Fatalf("key add: %d %q %q", code, out, errs)
	}
	code, out, _ = runCLI(t, env, "key", "list", "--user", userID, "--json")
	var keys struct {
		Items []struct{ ID, Status string } `json:"items"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &keys) != nil || len(keys.Items) != 1 {
		t.Fatalf("key list: %d %q", code, out)
	}
	keyID := keys.Items[0].ID
	qr := filepath.Join(t.TempDir(), "k.png")
	if code, out, _ = runCLI(t, env, "key", "config", keyID, "--qr", qr); code != 0 || !strings.Contains(out, "PrivateKey") {
		t.Fatalf("key config: %d %q", code, out)
	}
	if b, err := os.ReadFile(qr); err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
		t.Fatalf("qr file: %v", err)
	}
	if code, _, _ = runCLI(t, env, "key", "add", "--user", userID, "--type", "outline"); code != 0 {
		t.Fatal("outline key add failed")
	}
	if code, out, _ = runCLI(t, env, "key", "revoke", keyID); code != 0 || !strings.Contains(out, "revoked") {
		t.Fatalf("key revoke: %d %q", code, out)
	}
	if code, _, errs = runCLI(t, env, "key", "config", keyID); code != 1 || !strings.Contains(errs, "revoked") {
		t.Fatalf("config of a revoked key: %d %q", code, errs)
	}
	if code, out, _ = runCLI(t, env, "proxy", "add", "--user", "123"); code != 0 || !strings.HasPrefix(out, "tg://proxy?") {
		t.Fatalf("proxy add: %d %q", code, out)
	}
	if code, out, _ = runCLI(t, env, "plan", "add", "--name", "Mensual", "--days", "30", "--data-gb", "50", "--price-stars", "150", "--price-usd", "2.99"); code != 0 || !strings.Contains(out, "Mensual") {
		t.Fatalf("plan add: %d %q", code, out)
	}
	if code, out, _ = runCLI(t, env, "plan", "list"); code != 0 || !strings.Contains(out, "150 XTR / $2.99") {
		t.Fatalf("plan list: %d %q", code, out)
	}
	code, out, errs = runCLI(t, env, "apikey", "add", "--scope", "admin", "--name", "crm")
	if code != 0 || !strings.HasPrefix(out, "usp_") || !strings.Contains(errs, "shown once") {
		t.Fatalf("apikey add: %d %q %q", code, out, errs)
	}
	if code, out, _ = runCLI(t, env, "admin", "reset-password"); code != 0 || !strings.Contains(out, "one-time password") {
		t.Fatalf("reset-password: %d %q", code, out)
	}
	if code, out, _ = runCLI(t, env, "user", "ban", "123", "--reason", "spam"); code != 0 || !strings.Contains(out, "banned: true") {
		t.Fatalf("ban: %d %q", code, out)
	}
	if code, _, errs = runCLI(t, env, "user", "ban", "123"); code != 1 || !strings.Contains(errs, "already") {
		t.Fatalf("second ban: %d %q", code, errs)
	}
	if code, _, errs = runCLI(t, env, "user", "show", "01m8hzp2tz42egj454rqky0r91"); code != 1 || !strings.Contains(errs, "not found") {
		t.Fatalf("unknown user: %d %q", code, errs)
	}
	for _, f := range []string{"admin.sock", "node.key", "usipipo.db"} {
		fi, err := os.Stat(filepath.Join(data, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v mode %v, want 0600", f, err, fi.Mode().Perm())
		}
	}
	if code, out, _ = runCLI(t, env, "doctor", "--data", data, "--http", "127.0.0.1:0"); !strings.Contains(out, "checked by the running node") {
		t.Errorf("doctor against a running node: %d %q", code, out)
	}
}

func TestVerbWithoutNodeSaysSoInOneLine(t *testing.T) {
	data := t.TempDir()
	code, out, errs := runCLI(t, map[string]string{"USIPIPO_DATA": data}, "user", "list")
	if code != 1 || out != "" || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, "node is not running") {
		t.Fatalf("got %d %q %q", code, out, errs)
	}
}

func TestBadSettingsStopStartWithOneClearError(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o600)
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, []string{"serve", "--http", "abc"}, `--http "abc"`},
		{map[string]string{"USIPIPO_WG_MODE": "kernel"}, []string{"serve", "--data", dir}, "USIPIPO_WG_MODE"},
		{nil, []string{"serve", "--data", filepath.Join(file, "sub")}, "--data"},
		{nil, []string{"serve", "--egress-allow", "10.0.0.0/33"}, "--egress-allow"},
	} {
		code, _, errs := runCLI(t, tc.env, tc.args...)
		if code != 1 || !strings.Contains(errs, tc.want) || strings.Count(errs, "\n") != 1 {
			t.Errorf("%v %v: %d %q, want one line naming %s", tc.env, tc.args, code, errs, tc.want)
		}
	}
}

func TestInitPrintsSecretsOnceAndRefusesTwice(t *testing.T) {
	data := filepath.Join(t.TempDir(), "d")
	code, out, errs := runCLI(t, nil, "init", "--data", data)
	if code != 0 || out != "" || !strings.Contains(errs, "One-time password:") || !strings.Contains(errs, "Backup passphrase:") {
		t.Fatalf("init: %d %q %q", code, out, errs)
	}
	if code, _, errs = runCLI(t, nil, "init", "--data", data); code != 1 || !strings.Contains(errs, "already holds a node") {
		t.Fatalf("second init: %d %q", code, errs)
	}
}

// plan revoke ends the user's current plan (or the one named with --sub)
// over the admin socket, suspends the keys it held, and refuses a plan that
// is already over.
func TestPlanRevokeVerb(t *testing.T) {
	data, stop := startNode(t)
	defer stop()
	env := map[string]string{"USIPIPO_DATA": data}
	code, out, errs := runCLI(t, env, "user", "add", "--telegram-id", "321", "--json")
	var user struct{ ID string }
	if code != 0 || json.Unmarshal([]byte(out), &user) != nil || user.ID == "" {
		t.Fatalf("user add: %d %q %q", code, out, errs)
	}
	code, out, _ = runCLI(t, env, "plan", "add", "--name", "Mensual", "--max-keys", "2", "--json")
	var plan struct{ ID string }
	if code != 0 || json.Unmarshal([]byte(out), &plan) != nil || plan.ID == "" {
		t.Fatalf("plan add --json: %d %q", code, out)
	}
	grant := func() string {
		t.Helper()
		code, out, errs := runCLI(t, env, "plan", "grant", "--user", "321", "--plan", plan.ID, "--json")
		var sub struct{ ID string }
		if code != 0 || json.Unmarshal([]byte(out), &sub) != nil || sub.ID == "" {
			t.Fatalf("plan grant: %d %q %q", code, out, errs)
		}
		return sub.ID
	}
	first := grant()
	if code, out, errs := runCLI(t, env, "key", "add", "--user", "321", "--type", "outline", "--plan"); code != 0 {
		t.Fatalf("key add --plan: %d %q %q", code, out, errs)
	}

	code, out, errs = runCLI(t, env, "plan", "revoke", "--user", "321", "--reason", "abuse")
	if code != 0 || !strings.Contains(out, "subscription "+first) || !strings.Contains(out, "cancelled") {
		t.Fatalf("plan revoke: %d %q %q", code, out, errs)
	}
	code, out, _ = runCLI(t, env, "key", "list", "--user", user.ID, "--json")
	var keys struct {
		Items []struct{ Status string } `json:"items"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &keys) != nil || len(keys.Items) != 1 || keys.Items[0].Status != "suspended" {
		t.Fatalf("keys after the revoke: %d %q", code, out)
	}
	if code, _, errs = runCLI(t, env, "plan", "revoke", "--user", "321"); code != 1 || !strings.Contains(errs, "no such plan") {
		t.Fatalf("revoke with no current plan: %d %q", code, errs)
	}
	if code, _, errs = runCLI(t, env, "plan", "revoke", "--user", "321", "--sub", first); code != 1 || !strings.Contains(errs, "cancelled") {
		t.Fatalf("revoking a revoked plan again: %d %q", code, errs)
	}

	second := grant()
	code, out, errs = runCLI(t, env, "plan", "revoke", "--user", "321", "--sub", second, "--json")
	var sub struct{ ID, Status string }
	if code != 0 || json.Unmarshal([]byte(out), &sub) != nil || sub.ID != second || sub.Status != "cancelled" {
		t.Fatalf("plan revoke --sub --json: %d %q %q", code, out, errs)
	}
	if code, _, errs = runCLI(t, env, "plan", "revoke"); code != 2 || !strings.Contains(errs, "--user") {
		t.Fatalf("revoke without --user: %d %q", code, errs)
	}
}

// user export prints the service's export document (with the user's keys),
// --out writes it 0600; user erase refuses without --yes, then revokes the
// keys and wipes the personal fields; a second erase is an error, as the
// API's 410 is.
func TestUserExportEraseVerbs(t *testing.T) {
	data, stop := startNode(t)
	defer stop()
	env := map[string]string{"USIPIPO_DATA": data}
	code, out, errs := runCLI(t, env, "user", "add", "--telegram-id", "555", "--username", "lucia", "--json")
	var user struct{ ID string }
	if code != 0 || json.Unmarshal([]byte(out), &user) != nil || user.ID == "" {
		t.Fatalf("user add: %d %q %q", code, out, errs)
	}
	if code, out, errs = runCLI(t, env, "key", "add", "--user", "555", "--type", "outline", "--json"); code != 0 {
		t.Fatalf("key add: %d %q %q", code, out, errs)
	}
	var added struct {
		Key struct{ ID string } `json:"key"`
	}
	if json.Unmarshal([]byte(out), &added) != nil || added.Key.ID == "" {
		t.Fatalf("key add --json: %q", out)
	}

	type export struct {
		User struct {
			ID       string
			Erased   bool
			Personal struct{ Username string }
		}
		Keys []struct{ ID, Status string }
	}
	code, out, errs = runCLI(t, env, "user", "export", "555", "--json")
	var doc export
	if code != 0 || json.Unmarshal([]byte(out), &doc) != nil {
		t.Fatalf("user export --json: %d %q %q", code, out, errs)
	}
	if doc.User.ID != user.ID || doc.User.Personal.Username != "lucia" || len(doc.Keys) != 1 || doc.Keys[0].ID != added.Key.ID {
		t.Fatalf("export lacks the user or their key: %+v", doc)
	}
	if code, out, _ = runCLI(t, env, "user", "export", user.ID); code != 0 || !strings.Contains(out, "1 keys") || strings.Contains(out, "lucia") {
		t.Fatalf("user export (human summary, no personal data on screen): %d %q", code, out)
	}
	file := filepath.Join(t.TempDir(), "lucia.json")
	os.WriteFile(file, []byte("old"), 0o644)
	if code, out, errs = runCLI(t, env, "user", "export", user.ID, "--out", file); code != 0 || !strings.Contains(out, "written to "+file) {
		t.Fatalf("user export --out: %d %q %q", code, out, errs)
	}
	b, err := os.ReadFile(file)
	fi, _ := os.Stat(file)
	var fromFile export
	if err != nil || json.Unmarshal(b, &fromFile) != nil || fromFile.User.Personal.Username != "lucia" || fi.Mode().Perm() != 0o600 {
		t.Fatalf("export file: %v %v %q", err, fi.Mode(), b)
	}

	if code, out, errs = runCLI(t, env, "user", "erase", user.ID); code != 2 || out != "" || !strings.Contains(errs, "--yes") {
		t.Fatalf("erase without --yes: %d %q %q", code, out, errs)
	}
	if code, out, _ = runCLI(t, env, "user", "show", user.ID); code != 0 || !strings.Contains(out, "lucia") {
		t.Fatalf("a refused erase changed the user: %d %q", code, out)
	}
	if code, out, errs = runCLI(t, env, "user", "erase", "555", "--yes"); code != 0 || !strings.Contains(out, "erased") {
		t.Fatalf("erase --yes: %d %q %q", code, out, errs)
	}
	code, out, _ = runCLI(t, env, "user", "export", user.ID, "--json")
	doc = export{}
	if code != 0 || json.Unmarshal([]byte(out), &doc) != nil {
		t.Fatalf("export after erase: %d %q", code, out)
	}
	if !doc.User.Erased || doc.User.Personal.Username != "" || strings.Contains(out, "lucia") || len(doc.Keys) != 1 || doc.Keys[0].Status != "revoked" {
		t.Fatalf("after erase: %+v\n%s", doc, out)
	}
	// The Telegram id was unlinked, so it no longer names anyone.
	if code, _, errs = runCLI(t, env, "user", "erase", "555", "--yes"); code != 1 || !strings.Contains(errs, "not found") {
		t.Fatalf("erase by a forgotten Telegram id: %d %q", code, errs)
	}
	if code, _, errs = runCLI(t, env, "user", "erase", user.ID, "--yes"); code != 1 || !strings.Contains(errs, "erased") {
		t.Fatalf("second erase: %d %q", code, errs)
	}
}

// TestVerbsKeepREADMEPromises checks what an audit of the README against the
// binary found wrong: lists narrowed by a Telegram id (as "key add --user
// 123" takes one), a key's QR code (it holds the private key) written 0600,
// MTProto secrets in the GDPR export, the state of expired API keys and
// erased users, and text output free of Go's map syntax or time format.
func TestVerbsKeepREADMEPromises(t *testing.T) {
	n := runNode(t, "")
	env := map[string]string{"USIPIPO_DATA": n.data, "USIPIPO_BACKUP_PASSPHRASE": testPass}
	if code, _, errs := runCLI(t, env, "user", "add", "--telegram-id", "123"); code != 0 {
		t.Fatalf("user add: %q", errs)
	}
	if code, _, errs := runCLI(t, env, "key", "add", "--user", "123", "--type", "wireguard"); code != 0 {
		t.Fatalf("key add: %q", errs)
	}
	if code, _, errs := runCLI(t, env, "proxy", "add", "--user", "123"); code != 0 {
		t.Fatalf("proxy add: %q", errs)
	}
	var keys struct{ Items []struct{ ID string } }
	code, out, errs := runCLI(t, env, "key", "list", "--user", "123", "--json")
	if code != 0 || json.Unmarshal([]byte(out), &keys) != nil || len(keys.Items) != 1 {
		t.Fatalf("key list --user TELEGRAM_ID: %d %q %q", code, out, errs)
	}
	if code, out, errs = runCLI(t, env, "proxy", "list", "--user", "123", "--json"); code != 0 || !strings.Contains(out, `"status": "active"`) {
		t.Fatalf("proxy list --user TELEGRAM_ID: %d %q %q", code, out, errs)
	}
	if code, _, errs = runCLI(t, env, "key", "list", "--user", "999"); code != 1 || !strings.Contains(errs, "not found") {
		t.Fatalf("key list of an unknown user: %d %q", code, errs)
	}

	qr := filepath.Join(t.TempDir(), "key.png")
	os.WriteFile(qr, []byte("old"), 0o644)
	if code, _, errs = runCLI(t, env, "key", "config", keys.Items[0].ID, "--qr", qr); code != 0 {
		t.Fatalf("key config --qr: %q", errs)
	}
	if fi, err := os.Stat(qr); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("QR code of a private key: %v, mode %v, want 0600", err, fi.Mode().Perm())
	}
	if b, _ := os.ReadFile(qr); !bytes.HasPrefix(b, []byte("\x89PNG")) {
		t.Fatal("QR file is not a PNG")
	}

	if code, out, _ = runCLI(t, env, "user", "export", "123"); code != 0 || !strings.Contains(out, "1 MTProto proxies") {
		t.Fatalf("export without the user's MTProto secret: %d %q", code, out)
	}
	if code, out, _ = runCLI(t, env, "status"); code != 0 || strings.Contains(out, "map[") || !regexp.MustCompile(`installed: .*wireguard \d`).MatchString(out) {
		t.Fatalf("status: %d %q", code, out)
	}
	if code, _, errs = runCLI(t, env, "apikey", "add", "--scope", "read", "--name", "brief", "--expires", "300ms"); code != 0 {
		t.Fatalf("apikey add: %q", errs)
	}
	time.Sleep(400 * time.Millisecond)
	if code, out, _ = runCLI(t, env, "apikey", "list"); code != 0 || !strings.Contains(out, "expired") {
		t.Fatalf("apikey list shows an expired key as usable: %d %q", code, out)
	}
	if code, _, errs = runCLI(t, env, "user", "erase", "123", "--yes"); code != 0 {
		t.Fatalf("erase: %q", errs)
	}
	if code, out, _ = runCLI(t, env, "user", "list"); code != 0 || !strings.Contains(out, "erased") {
		t.Fatalf("user list shows an erased user as ok: %d %q", code, out)
	}

	// Offline, a restore says when the backup was taken as the node does.
	n.stop()
	bak := filepath.Join(t.TempDir(), "node.bak")
	if code, _, errs = runCLI(t, env, "backup", "--out", bak); code != 0 {
		t.Fatalf("cold backup: %q", errs)
	}
	fresh := filepath.Join(t.TempDir(), "fresh")
	code, out, errs = runCLI(t, env, "restore", "--in", bak, "--data", fresh)
	if code != 0 || !regexp.MustCompile(`taken \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z: restored`).MatchString(out) {
		t.Fatalf("offline restore: %d %q %q", code, out, errs)
	}
}
