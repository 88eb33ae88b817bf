package api

import (
	"context"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/store/model"
)

// A cached verdict still checks the presented secret, and follows any
// change of the key's record at once.
func TestKeyCacheChecksSecretAndRecord(t *testing.T) {
	t.Parallel()
	ta := startAPI(t)
	tok := ta.tokens["read"]
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/plans", token: tok}), 200) // cached now
	forged := []byte(tok)
	if forged[len(forged)-1] == 'a' {
		forged[len(forged)-1] = 'b'
	} else {
		forged[len(forged)-1] = 'a'
	}
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/plans", token: string(forged)}), 401)
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/plans", token: tok}), 200)

	// Revoked by another path than this API (the CLI): refused next time.
	k, err := ta.svc.AuthenticateAPIKey(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if err := ta.svc.RevokeAPIKey(context.Background(), app.ActorCLI, k.ID); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/plans", token: tok}), 401)

	// Expiry is checked against the clock on cached verdicts too.
	nk, err := ta.svc.CreateAPIKey(context.Background(), app.ActorCLI, "short", []model.Scope{model.ScopeRead}, ta.clock.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/plans", token: nk.Token}), 200)
	ta.clock.Add(time.Minute)
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/plans", token: nk.Token}), 401)
}
