package api

import (
	"strings"
	"testing"

	"github.com/usipipo/usipipo/store/model"
)

func TestTickets(t *testing.T) {
	t.Parallel()
	ta := startAPI(t)
	rd, w := ta.tokens["read"], ta.tokens["write"]
	u := ta.user(31)
	open := openTicketRequest{UserID: u.ID, Subject: "no conecta", Text: "la clave no funciona"}
	wantStatus(t, ta.do(req{method: "POST", path: "/api/v1/tickets", body: open}), 401)
	wantStatus(t, ta.do(req{method: "POST", path: "/api/v1/tickets", token: rd, body: open}), 403)
	r := ta.do(req{method: "POST", path: "/api/v1/tickets", token: w, body: open, header: map[string]string{"Idempotency-Key": "t1"}})
	wantStatus(t, r, 201)
	var tk ticket
	r.json(t, &tk)
	if tk.Subject != "no conecta" || len(tk.Messages) != 1 || tk.Messages[0].From != u.ID || r.header.Get("Location") != "/api/v1/tickets/"+tk.ID {
		t.Fatalf("opened %s", r.body)
	}
	// A retry with the same key opens nothing new.
	r = ta.do(req{method: "POST", path: "/api/v1/tickets", token: w, body: open, header: map[string]string{"Idempotency-Key": "t1"}})
	wantStatus(t, r, 201)
	if r.header.Get("Idempotent-Replayed") != "true" {
		t.Fatal("retried open was not replayed")
	}
	wantStatus(t, ta.do(req{method: "POST", path: "/api/v1/tickets", token: w, body: openTicketRequest{UserID: u.ID}}), 422)
	wantStatus(t, ta.do(req{method: "POST", path: "/api/v1/tickets", token: w, body: openTicketRequest{UserID: strings.Repeat("0", 26), Text: "x"}}), 404)
	wantStatus(t, ta.do(req{method: "POST", path: "/api/v1/tickets", token: w, body: `{"user_id":1}`}), 400)

	r = ta.do(req{method: "POST", path: "/api/v1/tickets/" + tk.ID + "/replies", token: w, body: replyRequest{Text: "reinstala"}})
	wantStatus(t, r, 201)
	r.json(t, &tk)
	if len(tk.Messages) != 2 || !strings.HasPrefix(tk.Messages[1].From, "admin:key:") {
		t.Fatalf("operator reply %s", r.body)
	}
	admTok := ta.login().AccessToken
	r = ta.do(req{method: "POST", path: "/api/v1/tickets/" + tk.ID + "/replies", token: admTok, body: replyRequest{Text: "¿y ahora?"}})
	wantStatus(t, r, 201)
	r.json(t, &tk)
	if tk.Messages[2].From != "admin:admin" {
		t.Fatalf("admin login reply signed %q", tk.Messages[2].From)
	}
	r = ta.do(req{method: "POST", path: "/api/v1/tickets/" + tk.ID + "/close", token: w})
	wantStatus(t, r, 200)
	r.json(t, &tk)
	if tk.Status != model.TicketClosed {
		t.Fatalf("close %s", r.body)
	}
	r = ta.do(req{method: "POST", path: "/api/v1/tickets/" + tk.ID + "/replies", token: w, body: replyRequest{Text: "late"}})
	wantStatus(t, r, 409)
	// The user writing again (relayed) reopens it.
	r = ta.do(req{method: "POST", path: "/api/v1/tickets/" + tk.ID + "/replies", token: w, body: replyRequest{Text: "sigue", AsUser: true}})
	wantStatus(t, r, 201)
	r.json(t, &tk)
	if tk.Status != model.TicketOpen || tk.Messages[3].From != u.ID {
		t.Fatalf("relayed reply %s", r.body)
	}

	r = ta.do(req{method: "GET", path: "/api/v1/tickets/" + tk.ID, token: rd})
	wantStatus(t, r, 200)
	tag := r.header.Get("ETag")
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/tickets/" + tk.ID, token: rd, header: map[string]string{"If-None-Match": tag}}), 304)
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/tickets/" + strings.Repeat("1", 26), token: rd}), 404)
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/tickets/x", token: rd}), 422)

	// Lists: by status with pagination, and a user's.
	for i := 0; i < 3; i++ {
		ta.do(req{method: "POST", path: "/api/v1/tickets", token: w, body: openTicketRequest{UserID: u.ID, Text: "más"}})
	}
	seen, after := map[string]bool{}, ""
	for pages := 0; pages < 10; pages++ {
		r = ta.do(req{method: "GET", path: "/api/v1/tickets?status=open&limit=3&after=" + after, token: rd})
		wantStatus(t, r, 200)
		var l list[ticket]
		r.json(t, &l)
		for _, x := range l.Items {
			if seen[x.ID] || x.Status != model.TicketOpen {
				t.Fatalf("ticket %s listed twice or not open", x.ID)
			}
			seen[x.ID] = true
		}
		if after = l.Next; after == "" {
			break
		}
	}
	if len(seen) != 4 {
		t.Fatalf("listed %d open tickets, want 4", len(seen))
	}
	r = ta.do(req{method: "GET", path: "/api/v1/tickets?status=closed", token: rd})
	var l list[ticket]
	r.json(t, &l)
	if len(l.Items) != 0 {
		t.Fatalf("closed tickets %s", r.body)
	}
	r = ta.do(req{method: "GET", path: "/api/v1/tickets?user_id=" + u.ID, token: rd})
	r.json(t, &l)
	if len(l.Items) != 4 {
		t.Fatalf("user's tickets %s", r.body)
	}
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/tickets?status=pending", token: rd}), 400)
	wantStatus(t, ta.do(req{method: "GET", path: "/api/v1/tickets?user_id=bad", token: rd}), 422)
	wantStatus(t, ta.do(req{method: "POST", path: "/api/v1/tickets/" + tk.ID + "/reopen", token: rd}), 403)
	wantStatus(t, ta.do(req{method: "POST", path: "/api/v1/tickets/" + tk.ID + "/reopen", token: w}), 200)
}
