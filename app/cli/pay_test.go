package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/app/bot/bottest"
	"github.com/usipipo/usipipo/app/pay"
)

// `usipipo pay qvapay` sets the running node's QvaPay credentials from a
// file or stdin; the node then opens invoices with them against a QvaPay
// stand-in, and the secret is nowhere in the database file in clear.
func TestPayQvaPayVerbSetsWorkingCredentials(t *testing.T) {
	const appID, secret = "9955dd29-082f-470b-882d-f4f0f25ea144", "qva-SECRET-value-7f3a"
	qva, err := bottest.NewQvaPay(appID, secret)
	if err != nil {
		t.Fatal(err)
	}
	defer qva.Close()
	n := runNode(t, "", "--qvapay-url", qva.URL)
	ctx, data := context.Background(), n.data
	env := map[string]string{"USIPIPO_DATA": data}

	u, err := n.Service.RegisterUser(ctx, app.ActorCLI, app.NewUser{TelegramID: 4242})
	if err != nil {
		t.Fatal(err)
	}
	credits := pay.Product{Kind: pay.KindCredits, Qty: pay.DefaultCatalogue().CreditPackages[0].Qty}
	if _, err := n.Pay.Buy(ctx, "test", u.ID, credits, pay.QvaPay); !errors.Is(err, pay.ErrNoProvider) {
		t.Fatalf("before the credentials: %v, want ErrNoProvider", err)
	}

	// Usage errors: no app id; no secret; a secret on two lines.
	if code, _, errs := runCLI(t, env, "pay", "qvapay", "--secret-file", "x"); code != 2 || !strings.Contains(errs, "--app-id") {
		t.Fatalf("no app id: %d %q", code, errs)
	}
	if code, _, errs := runCLI(t, env, "pay", "qvapay", "--app-id", appID); code != 1 || !strings.Contains(errs, "no QvaPay secret") {
		t.Fatalf("no secret: %d %q", code, errs)
	}
	two := filepath.Join(t.TempDir(), "two")
	os.WriteFile(two, []byte("a\nb\n"), 0o600)
	if code, _, errs := runCLI(t, env, "pay", "qvapay", "--app-id", appID, "--secret-file", two); code != 1 || !strings.Contains(errs, "one line") {
		t.Fatalf("two-line secret: %d %q", code, errs)
	}

	// A wrong secret from a file is accepted (QvaPay is not asked) but
	// fails at QvaPay; the right one from stdin works.
	wrong := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(wrong, []byte("not-the-secret\n"), 0o600)
	code, out, errs := runCLI(t, env, "pay", "qvapay", "--app-id", appID, "--secret-file", wrong)
	if code != 0 || !strings.Contains(out, appID) || strings.Contains(out+errs, "not-the-secret") {
		t.Fatalf("set from a file: %d %q %q", code, out, errs)
	}
	if _, err := n.Pay.Buy(ctx, "test", u.ID, credits, pay.QvaPay); err == nil {
		t.Fatal("an invoice opened with the wrong secret")
	}
	var stdout, stderr bytes.Buffer
	code = Run(ctx, []string{"pay", "qvapay", "--app-id", appID, "--secret-file", "-", "--json"}, Env{Stdin: strings.NewReader(secret + "\n"),
		Stdout: &stdout, Stderr: &stderr, Version: "test", LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if code != 0 || !strings.Contains(stdout.String(), `"app_id"`) || strings.Contains(stdout.String()+stderr.String(), secret) {
		t.Fatalf("set from stdin: %d %q %q", code, stdout.String(), stderr.String())
	}
	inv, err := n.Pay.Buy(ctx, "test", u.ID, credits, pay.QvaPay)
	if err != nil || inv.URL == "" {
		t.Fatalf("invoice with the credentials set by the CLI: %+v %v", inv, err)
	}

	n.stop()
	db, err := os.ReadFile(filepath.Join(data, "usipipo.db"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(db, []byte(secret)) || strings.Contains(n.logs.String(), secret) {
		t.Fatal("the QvaPay secret is in the database file or the logs in clear")
	}
}
