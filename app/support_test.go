package app

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

func TestTicketsSealedRepliedClosedErased(t *testing.T) {
	n := newTestNode(t)
	u, _ := n.svc.RegisterUser(ctx(), ActorCLI, NewUser{TelegramID: 7})
	other, _ := n.svc.RegisterUser(ctx(), ActorCLI, NewUser{TelegramID: 8})
	tk, err := n.svc.OpenTicket(ctx(), BotActor(7), u.ID, "no connecta", "mi clave secreta no funciona")
	if err != nil {
		t.Fatal(err)
	}
	if tk.Status != model.TicketOpen || tk.Subject != "no connecta" || len(tk.Messages) != 1 || tk.Messages[0].From != u.ID {
		t.Fatalf("opened %+v", tk)
	}
	var raw bytes.Buffer
	if _, err := n.st.Snapshot(&raw); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw.Bytes(), []byte("clave secreta")) || bytes.Contains(raw.Bytes(), []byte("no connecta")) {
		t.Fatal("ticket text in clear in the database file")
	}
	n.clock.Add(1)
	if _, err := n.svc.ReplyTicket(ctx(), PanelActor("root"), tk.ID, other.ID, "hijack"); !errors.Is(err, model.ErrInvalid) {
		t.Fatalf("another user's reply: %v", err)
	}
	got, err := n.svc.ReplyTicket(ctx(), PanelActor("root"), tk.ID, "admin:root", "reinstala la app")
	if err != nil || len(got.Messages) != 2 || got.Messages[1].Text != "reinstala la app" || got.Version == tk.Version {
		t.Fatalf("reply: %v %+v", err, got)
	}
	if err := n.svc.SetTicketStatus(ctx(), PanelActor("root"), tk.ID, model.TicketClosed); err != nil {
		t.Fatal(err)
	}
	if _, err := n.svc.ReplyTicket(ctx(), PanelActor("root"), tk.ID, "admin:root", "late"); !errors.Is(err, model.ErrState) {
		t.Fatalf("admin reply to a closed ticket: %v", err)
	}
	open, _, err := n.svc.Tickets(ctx(), model.TicketOpen, "", store.Page{})
	if err != nil || len(open) != 0 {
		t.Fatalf("open tickets after close: %v %d", err, len(open))
	}
	closed, _, _ := n.svc.Tickets(ctx(), model.TicketClosed, "", store.Page{})
	if len(closed) != 1 || closed[0].ID != tk.ID {
		t.Fatalf("closed tickets %+v", closed)
	}
	// The owner writing again reopens it.
	again, err := n.svc.ReplyTicket(ctx(), BotActor(7), tk.ID, u.ID, "sigue igual")
	if err != nil || again.Status != model.TicketOpen || len(again.Messages) != 3 {
		t.Fatalf("owner reply to closed: %v %+v", err, again)
	}
	mine, _, _ := n.svc.Tickets(ctx(), "", u.ID, store.Page{})
	if len(mine) != 1 {
		t.Fatalf("user's tickets %d", len(mine))
	}
	for _, bad := range []string{"", strings.Repeat("x", maxTicketText+1), "\xff\xfe"} {
		if _, err := n.svc.OpenTicket(ctx(), ActorCLI, u.ID, "s", bad); !errors.Is(err, model.ErrInvalid) {
			t.Errorf("text %q: %v", bad, err)
		}
	}
	if _, err := n.svc.OpenTicket(ctx(), ActorCLI, "0000000000000000000000000z", "s", "t"); !errors.Is(err, model.ErrNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
	// The GDPR export carries the tickets, opened.
	exp, err := n.svc.Export(ctx(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ts, _ := exp["tickets"].([]TicketView); len(ts) != 1 || ts[0].Messages[0].Text != "mi clave secreta no funciona" {
		t.Fatalf("export tickets %+v", exp["tickets"])
	}
	if err := n.svc.Erase(ctx(), ActorCLI, u.ID); err != nil {
		t.Fatal(err)
	}
	gone, err := n.svc.Ticket(ctx(), tk.ID)
	if err != nil || gone.Subject != ErasedText || gone.Messages[0].Text != ErasedText {
		t.Fatalf("after erase: %v %+v", err, gone)
	}
	if _, err := n.svc.OpenTicket(ctx(), ActorCLI, u.ID, "s", "t"); !errors.Is(err, model.ErrErased) {
		t.Fatalf("ticket for an erased user: %v", err)
	}
	if _, err := n.svc.ReplyTicket(ctx(), ActorCLI, tk.ID, "admin:root", "t"); !errors.Is(err, model.ErrErased) {
		t.Fatalf("reply after erase: %v", err)
	}
}
